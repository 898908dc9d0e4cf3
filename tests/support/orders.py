"""Helpers for orders tests on real PostgreSQL and Kafka: a fresh database per test, the app
running with its lifespan, tokens, and the sample plant loaded through Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka import TopicPartition

from contracts.manifest import TOPICS
from millrace.masterdata.plant import load_plant
from millrace.masterdata.publish import publish_plant
from services.orders.app import Hook, _nothing, create_app
from services.orders.handlers import LIFECYCLE
from services.orders.settings import OrdersSettings, TokenSpec
from shared.kafka import ensure_topics, make_consumer

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
PLANT_TOKEN, ACME_TOKEN, GLOBEX_TOKEN = "plant-token-1", "acme-token-1", "globex-token-1"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKENS = [
    TokenSpec(sha256=sha(PLANT_TOKEN), role="plant", name="ops"),
    TokenSpec(sha256=sha(ACME_TOKEN), role="customer", customer="acme"),
    TokenSpec(sha256=sha(GLOBEX_TOKEN), role="customer", customer="globex"),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fresh_database(database_url: str) -> str:
    """Create an empty database on the test server and return its URL."""
    name = f"orders_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def make_settings(db_url: str, kafka: str, **overrides: Any) -> OrdersSettings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap": kafka,
        "orders_tokens": TOKENS,
        "orders_consumer_group": f"orders-test-{uuid.uuid4().hex[:8]}",
        "orders_relay_poll_ms": 200,
        "database_pool_max": 60,
        **overrides,
    }
    return OrdersSettings(**values)


async def ensure_manifest_topics(kafka: str) -> None:
    await ensure_topics(make_settings("postgresql://x@127.0.0.1/x", kafka), TOPICS)


async def start_lifecycle_at_end(settings: OrdersSettings) -> None:
    """Start a new test group at the end of the lifecycle topics (the master-data topics stay
    read from their start). On a shared broker those topics hold every other test's, demo's and
    chaos run's events, tens of thousands, which no orders test looks at; a fresh group would
    replay them, one transaction each, for minutes of the shared machine's time. A group that
    has committed offsets already (a later life in the same test) is left as it is."""
    consumer = make_consumer(settings, group_id=settings.orders_consumer_group, role="test")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # as support.telemetry.end_offsets
        tps = [
            TopicPartition(topic, p)
            for topic in LIFECYCLE
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return
        consumer.assign(tps)
        for tp in tps:
            if await consumer.committed(tp) is not None:
                return
        await consumer.commit(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running(
    settings: OrdersSettings, *, after_publish: Hook = _nothing, after_db_commit: Hook = _nothing
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (migrations, relay, consumer) and an in-process client; a new
    consumer group skips the lifecycle topics' history (:func:`start_lifecycle_at_end`)."""
    await start_lifecycle_at_end(settings)
    app = create_app(settings, after_publish=after_publish, after_db_commit=after_db_commit)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
            yield client


async def wait_for(check: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    """Poll ``await check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def load_sample_plant(settings: OrdersSettings) -> None:
    """Publish the sample plant and wait until the service's product and customer views
    hold it."""
    plant = load_plant(PLANT)
    await publish_plant(settings, plant)
    assert settings.database_url is not None
    url = settings.database_url.get_secret_value()

    async def loaded() -> bool:
        conn = await asyncpg.connect(url)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM orders.products WHERE sku = ANY($1::text[])",
                [p.sku for p in plant.products],
            )
            c = await conn.fetchval(
                "SELECT count(*) FROM orders.customers WHERE customer_id = ANY($1::text[])",
                [c.customer_id for c in plant.customers],
            )
        except asyncpg.UndefinedTableError:
            return False
        finally:
            await conn.close()
        return bool(n == len(plant.products) and c == len(plant.customers))

    await wait_for(loaded, 60, "the product and customer views")


def tomorrow() -> str:
    return (datetime.now(UTC).date() + timedelta(days=7)).isoformat()


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lines": [
            {"sku": "frame-road", "quantity": 2, "options": {"size": "54", "colour": "red"}},
            {"sku": "stem-cnc", "quantity": 2},
        ],
        "due_date": tomorrow(),
        "priority": "high",
    }
    return body | overrides


class FailOnce:
    """A fault-injection hook that raises the first ``times`` calls, like a crash at that
    point: the surrounding transaction or offset commit never happens."""

    def __init__(self, times: int = 1) -> None:
        self.left = times
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("injected crash")


async def publish_lifecycle(
    kafka: str, events: list[tuple[str, Any]], *, service: str = "simulator"
) -> list[str]:
    """Publish ``(topic, contract)`` pairs with CloudEvents headers; return their ce_ids."""
    import orjson  # noqa: PLC0415

    from contracts.envelope import new_event  # noqa: PLC0415
    from shared.kafka import make_producer  # noqa: PLC0415

    producer = make_producer(make_settings("postgresql://x@127.0.0.1/x", kafka))
    await producer.start()
    ids = []
    try:
        for topic, event in events:
            envelope = new_event(topic=topic, service=service, subject=event.work_order_id)
            ids.append(envelope.id)
            await producer.send_and_wait(
                topic,
                orjson.dumps(event.model_dump(mode="json")),
                key=event.work_order_id.encode(),
                headers=envelope.headers(),
            )
    finally:
        await producer.stop()
    return ids
