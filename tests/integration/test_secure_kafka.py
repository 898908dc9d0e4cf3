"""Kafka access enforced: the local broker with SASL/SCRAM over TLS and the KafkaUser ACLs.

One secure broker for the module, in a scratch dir on free ports. Every client is built by
``shared.kafka`` from settings the way a service builds its own, the password read from the
principal's file through ``MILLRACE_SECRETS_DIR`` as in the prod overlay.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from support.orders import (
    ACME_TOKEN,
    bearer,
    fresh_database,
    load_sample_plant,
    make_settings,
    order_body,
    running,
)
from support.telemetry import ServiceProcess, free_port

from contracts.manifest import TOPICS
from contracts.manifest import topic as topic_spec
from millrace.infra import InfraError, kafka_access
from millrace.infra.acls import (
    OPERATIONS,
    PATTERN_TYPES,
    PERMISSIONS,
    RESOURCE_TYPES,
    AclBinding,
    all_bindings,
    load_users,
)
from millrace.infra.kafka import KafkaConfig, LocalKafka, admin_ready
from millrace.infra.kafka_secure import ADMIN_USER, client_security, grant_access
from shared.kafka import ensure_topics, make_admin, make_consumer, make_producer
from shared.settings import ServiceSettings

TELEMETRY, ORDERS = "millrace-telemetry", "millrace-orders"
READINGS, AGGREGATES = "telemetry.readings.v1", "telemetry.aggregates.v1"
ORDER_PLACED, OPERATION_STARTED = "orders.order-placed.v1", "production.operation-started.v1"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalKafka]:
    home = Path(tempfile.mkdtemp(prefix="millrace-test-secure-kafka-"))
    kafka = LocalKafka(
        KafkaConfig(home / "kafka", free_port(), free_port(), tied_to_caller=True, secure=True)
    )
    try:
        kafka.start(timeout_s=120)
        yield kafka
    finally:
        kafka.stop()
        shutil.rmtree(home, ignore_errors=True)


def env_of(broker: LocalKafka, user: str) -> dict[str, str]:
    """What ``infra up --secure`` tells a service to export, plus its principal."""
    return {
        **broker.client_env(),
        "MILLRACE_KAFKA_SASL_USERNAME": user,
        "MILLRACE_SECRETS_DIR": str(broker.principals()[user].parent),
    }


def settings_of(broker: LocalKafka, user: str) -> ServiceSettings:
    env = env_of(broker, user)
    return ServiceSettings(
        _secrets_dir=env["MILLRACE_SECRETS_DIR"],
        kafka_bootstrap=env["MILLRACE_KAFKA_BOOTSTRAP"],
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=user,
        kafka_ssl_cafile=env["MILLRACE_KAFKA_SSL_CAFILE"],
        kafka_send_timeout_ms=10_000,
    )


@pytest.fixture(scope="module")
async def topics(broker: LocalKafka) -> list[str]:
    """The manifest's topics, created by the admin (no service may create topics)."""
    return await ensure_topics(settings_of(broker, ADMIN_USER), TOPICS)


async def produce(settings: ServiceSettings, topic: str, value: bytes) -> int:
    producer = make_producer(settings)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=b"k")
        return int(sent.offset)
    finally:
        await producer.stop()


def batch_of_one(device: str, ts: int) -> bytes:
    reading = {"metric": "temp_c", "ts": ts, "value": 71.5}
    return orjson.dumps({"device_id": device, "readings": [reading]})


async def read_in_group(settings: ServiceSettings, topic: str, group: str, value: bytes) -> None:
    """Consume ``topic`` in ``group`` until ``value`` arrives, then commit past it."""
    consumer = make_consumer(settings, topic, group_id=group)
    try:
        await consumer.start()
        async with asyncio.timeout(30):
            while (await consumer.getone()).value != value:
                pass
        await consumer.commit()
    finally:
        await consumer.stop()


async def acls_become(admin: AIOKafkaAdminClient, wanted: frozenset[AclBinding]) -> None:
    """Wait until the broker describes exactly ``wanted``: ACL changes reach the broker's
    authorizer through the metadata log, a moment after the controller accepted them."""
    async with asyncio.timeout(15):
        while (held := await kafka_access.describe_acls(admin)) != wanted:
            await asyncio.sleep(0.2)
    assert held == wanted


async def test_the_broker_holds_exactly_the_acls_of_the_kafkauser_files(
    broker: LocalKafka,
) -> None:
    users = load_users()
    admin = make_admin(settings_of(broker, ADMIN_USER))
    await admin.start()
    try:
        await acls_become(admin, all_bindings(users))
    finally:
        await admin.close()
    assert {user.principal for user in users} >= {f"User:{n}" for n in (TELEMETRY, ORDERS)}
    assert set(broker.principals()) == {ADMIN_USER, *(user.name for user in users)}
    for path in broker.principals().values():
        assert path.stat().st_mode & 0o777 == 0o600


async def test_granting_again_changes_nothing_and_removes_an_acl_no_file_declares(
    broker: LocalKafka,
) -> None:
    stray = AclBinding(
        principal=f"User:{ORDERS}",
        resource_type=RESOURCE_TYPES["topic"],
        resource_name=READINGS,
        pattern_type=PATTERN_TYPES["literal"],
        operation=OPERATIONS["Read"],
        permission=PERMISSIONS["allow"],
    )
    bootstrap = broker.client_env()["MILLRACE_KAFKA_BOOTSTRAP"]
    wanted = all_bindings(load_users())
    admin = make_admin(settings_of(broker, ADMIN_USER))
    await admin.start()
    try:
        await acls_become(admin, wanted)
        await kafka_access.create_acls(admin, [stray])
        await acls_become(admin, wanted | {stray})
        assert "ACLs 0 created, 1 removed" in await grant_access(broker.secure, bootstrap)
        await acls_become(admin, wanted)
        assert "ACLs 0 created, 0 removed" in await grant_access(broker.secure, bootstrap)
    finally:
        await admin.close()


async def test_telemetry_writes_and_reads_its_own_topics(
    broker: LocalKafka, topics: list[str]
) -> None:
    telemetry = settings_of(broker, TELEMETRY)
    reading = (
        orjson.dumps({"device_id": "press-07", "readings": []}) + uuid.uuid4().bytes.hex().encode()
    )
    await produce(telemetry, READINGS, reading)
    await read_in_group(telemetry, READINGS, TELEMETRY, reading)
    assert await produce(telemetry, AGGREGATES, b"{}") >= 0


async def test_orders_writes_its_events_and_reads_its_lifecycle(
    broker: LocalKafka, topics: list[str]
) -> None:
    orders = settings_of(broker, ORDERS)
    assert await produce(orders, ORDER_PLACED, b"{}") >= 0
    started = f"started-{uuid.uuid4().hex}".encode()
    await produce(settings_of(broker, ADMIN_USER), OPERATION_STARTED, started)
    await read_in_group(orders, OPERATION_STARTED, ORDERS, started)


async def test_a_service_is_refused_creating_topics(broker: LocalKafka, topics: list[str]) -> None:
    spec = replace(topic_spec(READINGS), name=f"telemetry.readings.v1.{uuid.uuid4().hex[:8]}")
    with pytest.raises(TopicAuthorizationFailedError, match=spec.name):
        await ensure_topics(settings_of(broker, TELEMETRY), [spec])


async def test_telemetry_is_refused_writing_an_orders_topic(
    broker: LocalKafka, topics: list[str]
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(settings_of(broker, TELEMETRY), ORDER_PLACED, b"{}")


async def test_orders_is_refused_reading_telemetry_readings(
    broker: LocalKafka, topics: list[str]
) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await read_in_group(settings_of(broker, ORDERS), READINGS, ORDERS, b"never")


async def test_a_service_is_refused_another_services_consumer_group(
    broker: LocalKafka, topics: list[str]
) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        await read_in_group(settings_of(broker, TELEMETRY), READINGS, ORDERS, b"never")


async def test_plaintext_and_a_wrong_password_are_refused(broker: LocalKafka) -> None:
    bootstrap = broker.client_env()["MILLRACE_KAFKA_BOOTSTRAP"]
    ca = Path(broker.client_env()["MILLRACE_KAFKA_SSL_CAFILE"])
    password = broker.principals()[ORDERS].read_text().strip()
    assert await admin_ready(bootstrap, client_security(ca, ORDERS, password))
    assert not await admin_ready(bootstrap)
    host, _, port = bootstrap.rpartition(":")
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(host, int(port), **client_security(ca, ORDERS, password + "x"))


async def test_the_telemetry_service_runs_as_its_principal(
    broker: LocalKafka, topics: list[str], tmp_path: Path
) -> None:
    """The real service: HTTP ingest writes readings, the aggregator reads them in its group
    and writes the window, all as ``millrace-telemetry``."""
    service = ServiceProcess(
        "telemetry",
        {
            **env_of(broker, TELEMETRY),
            "MILLRACE_TELEMETRY_ROLE": "windows",
            "MILLRACE_TELEMETRY_WINDOWS": "1s",
            "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": "200",
            "MILLRACE_TELEMETRY_IDLE_CLOSE_MS": "500",
            "MILLRACE_TELEMETRY_COMMIT_INTERVAL_MS": "100",
        },
        tmp_path / "telemetry.log",
        free_port(),
    )
    device = f"press-{uuid.uuid4().hex[:8]}"
    ts = int(time.time() * 1000) - 5_000
    service.start()
    try:
        await service.wait_ready()
        async with httpx.AsyncClient() as client:
            batch = {
                "device_id": device,
                "readings": [{"metric": "temp_c", "ts": ts, "value": 71.5}],
            }
            response = await client.post(f"{service.url}/v1/readings", json=batch)
        assert response.status_code == 202, response.text
        window = await read_window(broker, device)
    finally:
        service.terminate()
    assert (window["count"], window["mean"]) == (1, 71.5)
    assert window["window_start"] == ts - ts % 1_000


async def test_the_orders_service_runs_as_its_principal(
    broker: LocalKafka, topics: list[str], database_url: str
) -> None:
    """The real service in process: its consumer reads the plant's products and customers in
    its group, its relay writes the placed order, all as ``millrace-orders``; the plant
    itself is published by the admin (orders may not write master data)."""
    orders = settings_of(broker, ORDERS)
    settings = make_settings(
        await fresh_database(database_url),
        orders.kafka_bootstrap,
        **{k: v for k, v in orders.model_dump().items() if k.startswith("kafka_")},
        orders_consumer_group=ORDERS,
    )
    admin = settings_of(broker, ADMIN_USER)
    as_admin = settings.model_copy(
        update={"kafka_sasl_username": ADMIN_USER, "kafka_sasl_password": admin.kafka_sasl_password}
    )
    async with running(settings) as client:
        await load_sample_plant(as_admin)
        headers = bearer(ACME_TOKEN) | {"Idempotency-Key": uuid.uuid4().hex}
        placed = await client.post("/v1/orders", json=order_body(), headers=headers)
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["order_id"]
        event = await read_first(
            broker, ORDER_PLACED, lambda data: data.get("order_id") == order_id
        )
    assert event["customer"] == "acme"


async def read_window(broker: LocalKafka, device: str) -> dict[str, object]:
    """The first aggregate of ``device``, read as the admin from the topic's beginning."""
    return await read_first(broker, AGGREGATES, lambda data: data.get("device_id") == device)


async def read_first(
    broker: LocalKafka, topic: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first record of ``topic`` that is ``wanted``, read as the admin from the start."""
    env = broker.client_env()
    admin = client_security(
        Path(env["MILLRACE_KAFKA_SSL_CAFILE"]),
        ADMIN_USER,
        broker.principals()[ADMIN_USER].read_text().strip(),
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=env["MILLRACE_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        **admin,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                data = orjson.loads(record.value or b"{}")
                if isinstance(data, dict) and wanted(data):
                    return data
    finally:
        await consumer.stop()
    raise AssertionError(f"{topic} ended")


def test_a_start_in_the_other_mode_is_refused(broker: LocalKafka) -> None:
    plaintext = LocalKafka(replace(broker.cfg, secure=False))
    with pytest.raises(InfraError, match="already runs with SASL_SSL, not PLAINTEXT"):
        plaintext.start()


@pytest.mark.parametrize(
    ("made_for", "secure", "reason"),
    [
        (None, True, "made for PLAINTEXT, not SASL_SSL"),
        ("SASL_SSL", False, "made for SASL_SSL, not PLAINTEXT"),
        ("SASL_SSL", True, "admin password file is gone"),
    ],
)
def test_data_the_broker_could_not_use_is_refused_before_it_starts(
    scratch_state: Path, made_for: str | None, secure: bool, reason: str
) -> None:
    home = scratch_state / "kafka"
    (home / "data").mkdir(parents=True)
    (home / "data" / "meta.properties").write_text("version=1\n")
    if made_for:
        (home / "security-protocol").write_text(f"{made_for}\n")
    kafka = LocalKafka(KafkaConfig(home, free_port(), free_port(), secure=secure))
    with pytest.raises(InfraError, match=reason):
        kafka.start()
    assert not kafka.status().running
