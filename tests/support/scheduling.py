"""Helpers for scheduling service tests on real PostgreSQL and Kafka: a fresh database, the
app running in process, the sample plant loaded, events published with CloudEvents headers,
the plan read back from the API and from Kafka, and a check that a plan is feasible."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.base import Contract
from contracts.envelope import new_event
from contracts.manifest import TOPICS
from contracts.orders import OrderLine, OrderPlaced, OrderStatus, Priority
from millrace.masterdata.plant import Plant, load_plant
from millrace.masterdata.publish import publish_plant
from services.scheduling.adapters import queries
from services.scheduling.adapters.consumer import TOPICS as CONSUMED
from services.scheduling.adapters.planner import Solve
from services.scheduling.adapters.snapshot import assignments, snapshot
from services.scheduling.app import create_app
from services.scheduling.config import rules_of
from services.scheduling.domain.model import Plan, Problem
from services.scheduling.domain.problem import build
from services.scheduling.domain.solver import solve
from services.scheduling.settings import SchedulingSettings, TokenSpec
from shared.kafka import ensure_topics, make_producer
from support.telemetry import TopicReader, end_offsets

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
PLANT_TOKEN, ACME_TOKEN = "sched-plant-token", "sched-acme-token"
# Other tests place orders on the same topics; this process's customer is its own.
CUSTOMER = f"acme-{uuid.uuid4().hex[:6]}"
PUBLISHED = "scheduling.schedule-published.v1"
SCHEDULED = "scheduling.operation-scheduled.v1"
EVENT_TOPICS = [t for t in CONSUMED if not t.startswith("masterdata.")]


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKENS = [
    TokenSpec(sha256=sha(PLANT_TOKEN), role="plant", name="planner"),
    TokenSpec(sha256=sha(ACME_TOKEN), role="customer", customer=CUSTOMER),
]


def bearer(token: str = PLANT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fresh_database(database_url: str) -> str:
    name = f"scheduling_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


def make_settings(db_url: str, kafka: str, **overrides: Any) -> SchedulingSettings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap": kafka,
        "scheduling_tokens": TOKENS,
        "scheduling_consumer_group": f"scheduling-test-{uuid.uuid4().hex[:8]}",
        "scheduling_plan_id": f"test-{uuid.uuid4().hex[:8]}",
        "scheduling_relay_poll_ms": 200,
        "scheduling_time_limit_s": 1.0,
        "scheduling_coalesce_ms": 100,
        "database_pool_max": 20,
        **overrides,
    }
    return SchedulingSettings(**values)


async def prepare(settings: SchedulingSettings) -> None:
    """Topics exist; the group starts at the end of the event topics (earlier tests' orders
    and machine states are not this test's) and reads master data from the beginning."""
    await ensure_topics(settings, TOPICS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.scheduling_consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps: list[TopicPartition] = []
        for topic in EVENT_TOPICS:
            parts = consumer.partitions_for_topic(topic)
            while not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic)
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.commit(dict(ends.items()))
    finally:
        await consumer.stop()


def db_url(settings: SchedulingSettings) -> str:
    assert settings.database_url is not None
    return settings.database_url.get_secret_value()


@contextlib.asynccontextmanager
async def running(
    settings: SchedulingSettings, *, solver: Solve = solve
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (migrations, consumer, planner, relay) and a client."""
    app = create_app(settings, solver=solver)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://scheduling") as client:
            yield client


async def wait_for(check: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def fetch(settings: SchedulingSettings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url(settings))
    try:
        return list(await conn.fetch(sql, *args))
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def load_sample_plant(settings: SchedulingSettings) -> Plant:
    """Publish the sample plant; wait until the service's views hold its machines and products."""
    plant = load_plant(PLANT)
    await publish_plant(settings, plant)

    async def loaded() -> bool:
        machines = await fetch(
            settings,
            "SELECT machine_id FROM scheduling.machines WHERE machine_id = ANY($1::text[])",
            [m.machine_id for m in plant.machines],
        )
        products = await fetch(
            settings,
            "SELECT sku FROM scheduling.products WHERE sku = ANY($1::text[])",
            [p.sku for p in plant.products],
        )
        return len(machines) == len(plant.machines) and len(products) == len(plant.products)

    await wait_for(loaded, 60, "the plant's master data")
    return plant


def placed(
    order_id: str,
    lines: Sequence[tuple[str, int]],
    *,
    customer: str = CUSTOMER,
    due: date | None = None,
    priority: Priority = Priority.NORMAL,
    operations: int = 3,
) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer=customer,
        lines=[
            OrderLine(line_no=n, sku=sku, quantity=qty, operations=operations)
            for n, (sku, qty) in enumerate(lines, start=1)
        ],
        due_date=due or (datetime.now(UTC).date() + timedelta(days=7)),
        priority=priority,
        status=OrderStatus.ACCEPTED,
        total_minor=0,
        currency="EUR",
        placed_at=datetime.now(UTC),
    )


async def publish(
    settings: SchedulingSettings,
    events: Sequence[tuple[str, str, Contract]],
    *,
    ids: Sequence[str | None] | None = None,
    service: str = "test",
) -> list[str]:
    """Publish ``(topic, key, event)`` triples with CloudEvents headers; ``ids`` fixes ce_ids
    (a duplicate delivery); return the ce_ids."""
    producer = make_producer(settings, role="test")
    await producer.start()
    out = []
    try:
        for n, (topic, key, event) in enumerate(events):
            given = ids[n] if ids is not None else None
            envelope = new_event(topic=topic, service=service, subject=key, event_id=given)
            out.append(envelope.id)
            await producer.send_and_wait(
                topic,
                orjson.dumps(event.model_dump(mode="json")),
                key=key.encode(),
                headers=envelope.headers(),
            )
    finally:
        await producer.stop()
    return out


async def latest(client: httpx.AsyncClient) -> dict[str, Any] | None:
    r = await client.get("/v1/schedule", headers=bearer())
    return r.json() if r.status_code == 200 else None


async def plan_after(
    client: httpx.AsyncClient, version: int, timeout_s: float = 30.0, what: str = "a new plan"
) -> dict[str, Any]:
    """The current plan once its version is past ``version``."""

    async def newer() -> dict[str, Any] | None:
        plan = await latest(client)
        return plan if plan is not None and plan["version"] > version else None

    result: dict[str, Any] = await wait_for(newer, timeout_s, what)
    return result


async def plan_with(
    client: httpx.AsyncClient, work_orders: set[str], timeout_s: float = 30.0
) -> dict[str, Any]:
    """The first plan that has every one of ``work_orders``."""

    async def found() -> dict[str, Any] | None:
        plan = await latest(client)
        if plan is None or not work_orders <= {a["work_order_id"] for a in plan["assignments"]}:
            return None
        return plan

    result: dict[str, Any] = await wait_for(found, timeout_s, "a plan with the work orders")
    return result


async def offsets(settings: SchedulingSettings, topic: str) -> dict[TopicPartition, int]:
    return await end_offsets(settings.bootstrap_servers[0], topic)


async def read_topic(
    settings: SchedulingSettings,
    start: dict[TopicPartition, int],
    done: Any,
    timeout_s: float = 30.0,
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Decoded records of a topic from ``start`` once ``done(decoded)`` holds."""
    async with TopicReader(settings.bootstrap_servers[0], start) as reader:
        await reader.poll_until(lambda _: done(reader.decoded()), timeout_s)
        return reader.decoded()


def assert_feasible(plan: dict[str, Any], plant: Plant, lines: dict[str, tuple[str, int]]) -> None:
    """Every operation of the work orders in ``lines`` (``work order id -> (sku, quantity)``)
    is on a machine able to run it, in routing order, for its full duration, and no machine
    runs two operations at once (other tests' orders may share the plan)."""
    routing = {p.sku: {op.seq: op for op in p.routing} for p in plant.products}
    capable = {m.machine_id: set(m.capabilities) for m in plant.machines}
    by_machine: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_work_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in plan["assignments"]:
        by_machine[a["machine_id"]].append((a["start_ms"], a["end_ms"]))
        by_work_order[a["work_order_id"]].append(a)
    for slots in by_machine.values():
        slots.sort()
        for (_, end), (start, _) in itertools.pairwise(slots):
            assert end <= start, f"overlap on a machine: {slots}"
    assert set(lines) <= set(by_work_order)
    for wo, (sku, qty) in lines.items():
        ops = by_work_order[wo]
        steps = routing[sku]
        ops.sort(key=lambda a: a["seq"])
        assert [a["seq"] for a in ops] == sorted(steps)
        for a in ops:
            step = steps[a["seq"]]
            assert step.capability in capable[a["machine_id"]]
            assert a["end_ms"] - a["start_ms"] == (step.setup_s + qty * step.run_s_per_unit) * 1000
        for before, after in itertools.pairwise(ops):
            assert before["end_ms"] <= after["start_ms"]


async def problem_and_plan(settings: SchedulingSettings, version: int) -> tuple[Problem, Plan]:
    """A stored plan version and the problem rebuilt from the service's tables at its planning
    time, with the version before as its previous plan (valid while nothing has changed since)."""
    plan_id = settings.scheduling_plan_id
    pool = await asyncpg.create_pool(db_url(settings), min_size=1, max_size=2)
    try:
        head = await queries.header(pool, plan_id, version)
        assert head is not None
        async with pool.acquire() as conn:
            state, _ = await snapshot(conn, head["planned_at"], plan_id)
            before = await assignments(conn, plan_id, version - 1)
        plan, _ = await queries.stored_plan(pool, head)
    finally:
        await pool.close()
    return build(replace(state, previous=before), rules_of(settings)), plan
