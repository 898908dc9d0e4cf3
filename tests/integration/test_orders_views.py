"""The orders consumer applies product and customer records before a backlog of lifecycle
events, on real Kafka and PostgreSQL: a customer published while the backlog drains can order
at once, not after the backlog."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

import asyncpg
from support.orders import fresh_database, make_settings, wait_for

from contracts.envelope import new_event
from contracts.manifest import TopicSpec
from contracts.masterdata import Customer
from contracts.production import OperationStarted
from millrace.masterdata.plant import Plant
from millrace.masterdata.publish import publish_plant
from services.orders.adapters.consumer import LifecycleConsumer
from services.orders.adapters.postgres import SCHEMA
from services.orders.handlers import CUSTOMERS_TOPIC, PRODUCTS_TOPIC, on_operation
from services.orders.settings import OrdersSettings
from shared.dlq import DlqPublisher
from shared.kafka import ensure_topics, make_consumer, make_producer
from shared.migrations import migrate_pool

BACKLOG = 18_000
# The polls under way while the customer's record is fetched (500 records each) may still
# apply backlog events; without the views first, the whole backlog went ahead of it.
AT_MOST = 2_000


async def publish_backlog(settings: OrdersSettings, topic: str) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for i in range(BACKLOG):
            event = OperationStarted(
                work_order_id=f"gone-{i}/1",
                order_id=f"gone-{i}",
                line_no=1,
                operation_seq=10,
                machine_id="cnc-01",
                ts=1_700_000_000_000,
            )
            envelope = new_event(
                topic="production.operation-started.v1", service="simulator", subject=f"gone-{i}"
            )
            futures.append(
                await producer.send(
                    topic,
                    event.model_dump_json().encode(),
                    key=event.work_order_id.encode(),
                    headers=envelope.headers(),
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_a_new_customer_is_not_held_back_by_a_lifecycle_backlog(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    topic = f"test.views-{uuid.uuid4().hex[:10]}.operation-started.v1"
    spec = TopicSpec(topic, "work order id", "test", ("orders",), "views test", partitions=6)
    await ensure_topics(settings, [spec])
    await publish_backlog(settings, topic)
    assert settings.database_url is not None
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1)
    await migrate_pool(pool, SCHEMA, "services.orders.migrations")
    group = f"views-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings, PRODUCTS_TOPIC, CUSTOMERS_TOPIC, topic, group_id=group)
    producer = make_producer(settings, role="dlq")
    await producer.start()
    await consumer.start()
    stop = asyncio.Event()
    worker = LifecycleConsumer(
        pool,
        consumer,
        DlqPublisher(producer, "orders"),
        handlers={topic: (OperationStarted, on_operation)},
    )
    task = asyncio.create_task(worker.run(stop))

    async def applied() -> int:
        n = await pool.fetchval("SELECT count(*) FROM orders.inbox WHERE topic = $1", topic)
        return int(n)

    try:
        await wait_for(lambda: _over(applied(), 200), 120, "the backlog to be draining")
        cid = f"late-{uuid.uuid4().hex[:8]}"
        customer = Customer(customer_id=cid, name="Late", country="NL")
        await publish_plant(settings, Plant((), (), (), (customer,)))
        published_at = await applied()

        async def known() -> bool:
            found = await pool.fetchval(
                "SELECT count(*) FROM orders.customers WHERE customer_id = $1", cid
            )
            return bool(found)

        await wait_for(known, 120, "the new customer in the view")
        in_between = await applied() - published_at
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await consumer.stop()
        await producer.stop()
        await pool.close()
    assert in_between <= AT_MOST, f"{in_between} backlog events were applied before the customer"


async def _over(count: Awaitable[int], n: int) -> bool:
    return await count > n
