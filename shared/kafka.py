"""Kafka clients with safe defaults.

Producers are idempotent (so ``acks=all``), compress, and bound every send. Consumers never
auto-commit: each caller commits explicitly after its effect is durable. Topics are never
auto-created outside dev.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from contracts.manifest import TopicSpec
from shared.settings import ServiceSettings

# The producers' largest record batch (before compression): a boundary's window records fill
# many; uncompressed, it stays under the broker's default message.max.bytes (1 MiB).
MAX_BATCH_SIZE = 256 * 1024


def _security(settings: ServiceSettings) -> dict[str, Any]:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {"security_protocol": "PLAINTEXT"}
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    out: dict[str, Any] = {
        "security_protocol": settings.kafka_security_protocol,
        "ssl_context": ctx,
    }
    if settings.kafka_security_protocol == "SASL_SSL":
        assert settings.kafka_sasl_password is not None
        out |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return out


def client_id(settings: ServiceSettings, role: str) -> str:
    return f"millrace-{settings.service_name}-{role}-{settings.instance_id}"


def producer_config(settings: ServiceSettings) -> dict[str, Any]:
    compression = None if settings.kafka_compression == "none" else settings.kafka_compression
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "enable_idempotence": True,
        "acks": "all",
        "compression_type": compression,
        "linger_ms": settings.kafka_linger_ms,
        "request_timeout_ms": settings.kafka_send_timeout_ms,
        "max_batch_size": MAX_BATCH_SIZE,
        **_security(settings),
    }


def make_producer(settings: ServiceSettings, role: str = "producer") -> AIOKafkaProducer:
    """An idempotent, compressing producer whose sends fail after ``kafka_send_timeout_ms``."""
    return AIOKafkaProducer(client_id=client_id(settings, role), **producer_config(settings))


def make_consumer(
    settings: ServiceSettings,
    *topics: str,
    group_id: str,
    role: str = "consumer",
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer with auto-commit off: callers commit offsets once their effect is durable."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id(settings, role),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        **_security(settings),
    }
    cfg.update(overrides)
    return AIOKafkaConsumer(*topics, **cfg)


def make_admin(settings: ServiceSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id(settings, "admin"),
        **_security(settings),
    )


async def ensure_topics(
    settings: ServiceSettings, specs: Iterable[TopicSpec], *, replication: int = 1
) -> list[str]:
    """Create the topics of ``specs`` (and their DLQs) that do not exist; return those created."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for spec in specs:
            if spec.name not in existing:
                wanted.append(
                    NewTopic(spec.name, spec.partitions, replication, topic_configs=spec.config())
                )
            if spec.dlq not in existing:
                dlq_cfg = {"cleanup.policy": "delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
                wanted.append(NewTopic(spec.dlq, 1, replication, topic_configs=dlq_cfg))
        created: list[str] = []
        for new in wanted:
            # aiokafka returns the broker's per-topic errors instead of raising them: a
            # principal without Create rights would otherwise be told its topics were made.
            response = await admin.create_topics([new])
            _name, code, *_ = response.topic_errors[0]
            if code == TopicAlreadyExistsError.errno:
                continue
            if code:
                raise for_code(code)(f"creating topic {new.name}")
            created.append(new.name)
        return created
    finally:
        await admin.close()


async def kafka_ready(settings: ServiceSettings, timeout_s: float = 5.0) -> bool:
    """True when the cluster answers an admin metadata request."""
    admin = make_admin(settings)
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await admin.list_topics()
        return True
    except Exception:  # noqa: BLE001 - readiness reports, never raises
        return False
    finally:
        await admin.close()
