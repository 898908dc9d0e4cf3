"""FastStream's Kafka broker with the same safe defaults as :mod:`shared.kafka`.

Used where a service publishes from request handlers (so FastStream's in-memory TestKafkaBroker
can test them) and for FastStream's Prometheus transport metrics.
"""

from __future__ import annotations

import ssl

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from prometheus_client import REGISTRY

from shared.kafka import client_id
from shared.settings import ServiceSettings


def _security(settings: ServiceSettings) -> BaseSecurity | None:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol == "SSL":
        return BaseSecurity(ssl_context=ctx)
    assert settings.kafka_sasl_username is not None
    assert settings.kafka_sasl_password is not None
    scram = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLScram256
    return scram(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        ssl_context=ctx,
    )


def make_broker(settings: ServiceSettings) -> KafkaBroker:
    """An idempotent (acks=all), compressing broker whose publishes are bounded in time.

    Subscribers default to NACK_ON_ERROR: the offset is committed only after the handler
    succeeded, and a failure redelivers instead of skipping (FastStream's own default,
    ACK_FIRST, is at-most-once). Handlers send poison to the DLQ themselves, then return.
    """
    compression = None if settings.kafka_compression == "none" else settings.kafka_compression
    return KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id(settings, "broker"),
        enable_idempotence=True,
        acks="all",
        compression_type=compression,
        linger_ms=settings.kafka_linger_ms,
        request_timeout_ms=settings.kafka_send_timeout_ms,
        allow_auto_create_topics=settings.kafka_auto_create_topics,
        security=_security(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        middlewares=[
            KafkaPrometheusMiddleware(
                registry=REGISTRY, app_name=f"millrace_{settings.service_name}"
            ),
        ],
        logger=None,
    )
