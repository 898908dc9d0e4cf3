"""No record stops the orders lifecycle consumer, on real Kafka and PostgreSQL.

A record that makes a stage raise (envelope, schema, handler after a half-written effect, the
unit of work's SQL) goes to ``<topic>.dlq`` with its provenance; the records after it are
applied exactly once and the offsets are committed past it. An outage (a connection error, a
closed pool) is retried, never dead-lettered. The test topic is fresh and has one partition,
so the order of records and the committed offset are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY
from support.orders import fresh_database, make_settings, wait_for
from support.telemetry import TopicReader, end_offsets

from contracts.base import Contract
from contracts.envelope import new_event
from contracts.manifest import TopicSpec
from contracts.masterdata import Customer
from contracts.orders import OrderLine, Priority
from contracts.production import OperationStarted
from services.orders.adapters.consumer import LifecycleConsumer
from services.orders.adapters.postgres import SCHEMA, UnitOfWork, insert_order
from services.orders.domain.order import place
from services.orders.handlers import CUSTOMERS_TOPIC, Handler, on_operation
from services.orders.settings import OrdersSettings
from shared.dlq import DlqPublisher
from shared.kafka import ensure_topics, make_consumer, make_producer
from shared.migrations import migrate_pool


@dataclass
class Env:
    settings: OrdersSettings
    pool: asyncpg.Pool
    topic: str
    order_id: str


@pytest.fixture
async def env(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Env]:
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    topic = f"test.poison-{uuid.uuid4().hex[:10]}.operation-started.v1"
    spec = TopicSpec(topic, "work order id", "test", ("orders",), "poison test", partitions=1)
    await ensure_topics(settings, [spec])
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    await migrate_pool(pool, SCHEMA, "services.orders.migrations")
    order = place(
        order_id=str(uuid.uuid4()),
        customer="acme",
        lines=(OrderLine(line_no=1, sku="frame-road", quantity=1, operations=20),),
        due_date=date(2030, 1, 1),
        priority=Priority.NORMAL,
        currency="EUR",
        at=datetime.now(UTC),
    )
    assert await insert_order(pool, order, "plant:test", "k-1", "r1:x")
    try:
        yield Env(settings, pool, topic, order.order_id)
    finally:
        await pool.close()


class Faults:
    """The handler of the test topic: the real one, then a fault for marked events. ``boom``
    raises after the handler has written the order (a half effect to roll back); ``down``
    raises a connection error ``outages`` times (an outage, to be retried)."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.raised_outage = 0

    async def __call__(self, event: Contract, topic: str, uow: UnitOfWork) -> str:
        outcome = await on_operation(event, topic, uow)
        assert isinstance(event, OperationStarted)
        if event.machine_id == "boom":
            raise RuntimeError("handler refused the event")
        if event.machine_id == "down" and self.outages > 0:
            self.outages -= 1
            self.raised_outage += 1
            raise ConnectionError("database unreachable")
        return outcome


Sent = tuple[bytes | None, list[tuple[str, bytes]]]


def started(oid: str, seq: int, machine: str = "cnc-01", ce_id: str | None = None) -> Sent:
    event = OperationStarted(
        work_order_id=f"{oid}/1",
        order_id=oid,
        line_no=1,
        operation_seq=seq,
        machine_id=machine,
        ts=int(time.time() * 1000),
    )
    envelope = new_event(
        topic="production.operation-started.v1",
        service="simulator",
        subject=event.work_order_id,
        event_id=ce_id,
    )
    return orjson.dumps(event.model_dump(mode="json")), envelope.headers()


async def publish(kafka: str, topic: str, records: list[Sent]) -> None:
    producer = make_producer(make_settings("postgresql://x@127.0.0.1/x", kafka))
    await producer.start()
    try:
        for value, headers in records:
            await producer.send_and_wait(topic, value, key=b"k", headers=headers)
    finally:
        await producer.stop()


async def supervise(env: Env, handler: Handler, group: str, stop: asyncio.Event) -> int:
    """Run the consumer as the service's supervisor does: rebuilt after every error, resuming
    from the committed offsets. Returns how many lives ended in an error."""
    failures = 0
    producer = make_producer(env.settings, role="dlq")
    await producer.start()
    try:
        while not stop.is_set():
            consumer = make_consumer(env.settings, env.topic, group_id=group)
            await consumer.start()
            dlq = DlqPublisher(producer, "orders")
            worker = LifecycleConsumer(
                env.pool, consumer, dlq, handlers={env.topic: (OperationStarted, handler)}
            )
            try:
                await worker.run(stop)
            except ConnectionError:
                failures += 1
            finally:
                await consumer.stop()
    finally:
        await producer.stop()
    return failures


async def timeline_seqs(pool: asyncpg.Pool, oid: str) -> list[int]:
    rows = await pool.fetch(
        "SELECT detail FROM orders.order_timeline WHERE order_id = $1"
        " AND kind = 'operation-started' ORDER BY n",
        oid,
    )
    return [orjson.loads(r["detail"])["operation_seq"] for r in rows]


async def committed(kafka: str, group: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offset: int | None = await consumer.committed(tp)
        return offset
    finally:
        await consumer.stop()


def dlq_count(topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "millrace_orders_consumed_total", {"topic": topic, "outcome": "dlq"}
    )
    return value or 0.0


async def test_a_raising_record_is_dead_lettered_and_the_partition_moves_on(
    env: Env, kafka_bootstrap: str
) -> None:
    oid = env.order_id
    good = {seq: started(oid, seq) for seq in (1, 2, 3, 5, 7, 9)}
    no_envelope: Sent = (good[1][0], [("content-type", b"application/json")])
    records = [
        good[1],
        no_envelope,
        good[2],
        (b'{"order_id": 5}', started(oid, 90)[1]),
        good[3],
        started(oid, 4, machine="boom"),
        good[5],
        started(oid, 6, ce_id="nul\x00id"),
        good[7],
        started(oid, 8, machine="down"),
        good[9],
        good[1],  # a redelivery of the first event: applied once only
    ]
    faults = Faults(outages=2)
    group = f"poison-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    await publish(kafka_bootstrap, env.topic, records)
    task = asyncio.create_task(supervise(env, faults, group, stop))
    try:

        async def settled() -> bool:
            return dlq_count(env.topic) >= 4 and 9 in await timeline_seqs(env.pool, oid)

        await wait_for(settled, 60, "every record handled")
        tp = TopicPartition(env.topic, 0)

        async def past_the_end() -> bool:
            return await committed(kafka_bootstrap, group, tp) == len(records)

        await wait_for(past_the_end, 30, "offsets committed past every record")
    finally:
        stop.set()
        failures = await asyncio.wait_for(task, 30)

    seqs = await timeline_seqs(env.pool, oid)
    assert sorted(seqs) == [1, 2, 3, 5, 7, 8, 9], "good records applied once; poison not at all"
    assert faults.raised_outage == 2, "the outage was retried"
    assert failures == 2, "each outage ended a life of the consumer, not a record"
    assert dlq_count(env.topic) == 4
    inbox = await env.pool.fetchval("SELECT count(*) FROM orders.inbox WHERE topic = $1", env.topic)
    assert inbox == 7, "poison left no inbox row (the handler's transaction rolled back)"

    dlq = TopicPartition(f"{env.topic}.dlq", 0)
    async with TopicReader(kafka_bootstrap, {dlq: 0}) as reader:
        await reader.poll_until(lambda got: len(got) >= 4, 30)
    dead = [dict(r.headers) for r in reader.records]
    assert [h["dlq_source_offset"] for h in dead] == [b"1", b"3", b"5", b"7"]
    assert [h["dlq_reason"] for h in dead] == [
        b"envelope",
        b"schema",
        b"processing_error",
        b"processing_error",
    ]
    assert dead[2]["dlq_error"] == b"RuntimeError: handler refused the event"
    assert dead[3]["dlq_error"].startswith(b"CharacterNotInRepertoireError: ")
    for headers in dead:
        assert headers["dlq_source_topic"] == env.topic.encode()
        assert headers["dlq_source_partition"] == b"0"
        assert headers["dlq_service"] == b"orders"
    assert reader.records[2].value == records[5][0], "the record as it was sent"


async def test_an_outage_is_not_dead_lettered(env: Env, kafka_bootstrap: str) -> None:
    value, headers = started(env.order_id, 1)
    record = ConsumerRecord(
        env.topic, 0, 0, 0, 0, b"k", value, None, 1, len(value or b""), tuple(headers)
    )
    producer = make_producer(env.settings, role="dlq")
    await producer.start()
    consumer = make_consumer(env.settings, env.topic, group_id="unused")
    try:
        worker = LifecycleConsumer(
            env.pool,
            consumer,
            DlqPublisher(producer, "orders"),
            handlers={env.topic: (OperationStarted, on_operation)},
        )
        await env.pool.close()
        with pytest.raises(asyncpg.InterfaceError):
            await worker.process(record)
    finally:
        await consumer.stop()  # never started: the worker is driven through process()
        await producer.stop()
    async with TopicReader(kafka_bootstrap, {TopicPartition(f"{env.topic}.dlq", 0): 0}) as r:
        with contextlib.suppress(AssertionError):
            await r.poll_until(lambda got: len(got) > 0, 3)
    assert r.records == [], "an outage never reaches the DLQ"
    assert dlq_count(env.topic) == 0


async def test_master_data_poison_is_dead_lettered_and_the_view_moves_on(
    env: Env, kafka_bootstrap: str
) -> None:
    """The customer view's stages: a schema-invalid record, and one PostgreSQL cannot store (a
    NUL in a jsonb string), each dead-lettered; the good record after them is in the view."""
    cid = f"poison-{uuid.uuid4().hex[:8]}"
    good = Customer(customer_id=cid, name="Good", country="NL")
    nul = Customer(customer_id=cid, name="Bad\x00name", country="NL")
    values = [
        b'{"customer_id": "x"}',
        nul.model_dump_json().encode(),
        good.model_dump_json().encode(),
    ]
    dlq = TopicPartition(f"{CUSTOMERS_TOPIC}.dlq", 0)
    start = (await end_offsets(kafka_bootstrap, dlq.topic))[dlq]
    producer = make_producer(env.settings, role="dlq")
    await producer.start()
    consumer = make_consumer(env.settings, CUSTOMERS_TOPIC, group_id="unused")
    try:
        worker = LifecycleConsumer(env.pool, consumer, DlqPublisher(producer, "orders"))
        for offset, value in enumerate(values):
            record = ConsumerRecord(
                CUSTOMERS_TOPIC, 0, offset, 0, 0, cid.encode(), value, None, 1, len(value), ()
            )
            await worker.process(record)
    finally:
        await consumer.stop()  # never started: the worker is driven through process()
        await producer.stop()
    stored = await env.pool.fetchval(
        "SELECT data->>'name' FROM orders.customers WHERE customer_id = $1", cid
    )
    assert stored == "Good"
    async with TopicReader(kafka_bootstrap, {dlq: start}) as reader:
        await reader.poll_until(lambda got: sum(r.key == cid.encode() for r in got) >= 2, 30)
    dead = [dict(r.headers) for r in reader.records if r.key == cid.encode()]
    assert [(h["dlq_reason"], h["dlq_source_offset"]) for h in dead] == [
        (b"schema", b"0"),
        (b"processing_error", b"1"),
    ]
    assert dead[1]["dlq_error"].startswith(b"UntranslatableCharacterError: ")
