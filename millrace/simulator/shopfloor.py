"""A simulated customer and shop floor for demos: places orders over the orders API, then
plays every placed order's routing as events, so orders move through their lifecycle.

For each line of an ``orders.order-placed.v1`` event, each routing operation (from the plant's
master data) is scheduled on a machine that offers its capability, started, then completed,
``step_s`` apart. Events carry CloudEvents headers with ids derived from (work order, operation,
step), so a replay is the same event. Nothing here imports the orders service: only contracts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.base import Contract
from contracts.envelope import derived_id, new_event
from contracts.masterdata import Product
from contracts.orders import OrderPlaced
from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled
from millrace.masterdata.plant import Plant
from shared.logging import get_logger

PLACED = "orders.order-placed.v1"
SCHEDULED = "scheduling.operation-scheduled.v1"
STARTED = "production.operation-started.v1"
COMPLETED = "production.operation-completed.v1"
CUSTOMERS = ("acme", "globex", "initech")
log = get_logger(__name__)


@dataclass(frozen=True)
class ShopFloorConfig:
    orders_url: str
    token: str
    order_every_s: float = 5.0
    step_s: float = 1.0
    seed: int = 1


def order_request(plant: Plant, rng: random.Random, today: datetime) -> dict[str, Any]:
    """A valid order for the plant: 1-2 lines, every option chosen at random."""
    lines = []
    for product in rng.sample(list(plant.products), k=rng.randint(1, 2)):
        options = {o.name: rng.choice(o.values) for o in product.options}
        quantity = rng.randint(product.min_order_qty, min(product.max_order_qty, 5))
        lines.append({"sku": product.sku, "quantity": quantity, "options": options})
    due = (today + timedelta(days=rng.randint(7, 30))).date().isoformat()
    return {
        "customer": rng.choice(CUSTOMERS),
        "lines": lines,
        "due_date": due,
        "priority": rng.choice(["low", "normal", "high", "rush"]),
    }


def operation_events(
    placed: OrderPlaced, products: dict[str, Product], plant: Plant, now_ms: int, step_ms: int
) -> list[tuple[str, Contract]]:
    """Every scheduled/started/completed event of the order, in shop-floor order."""
    out: list[tuple[str, Contract]] = []
    t = now_ms
    for line in placed.lines:
        product = products.get(line.sku)
        if product is None:
            continue
        work = {
            "work_order_id": f"{placed.order_id}/{line.line_no}",
            "order_id": placed.order_id,
            "line_no": line.line_no,
        }
        for op in product.routing:
            machine = next(m for m in plant.machines if op.capability in m.capabilities)
            ids = {**work, "operation_seq": op.seq, "machine_id": machine.machine_id}
            start, end = t + step_ms, t + 2 * step_ms
            scheduled = OperationScheduled(
                **ids, sku=line.sku, planned_start=start, planned_end=end
            )
            out.append((SCHEDULED, scheduled))
            out.append((STARTED, OperationStarted(**ids, ts=start)))
            out.append((COMPLETED, OperationCompleted(**ids, ts=end, quantity_good=line.quantity)))
            t += 2 * step_ms
    return out


async def publish(producer: AIOKafkaProducer, topic: str, event: Contract) -> None:
    work_order = str(getattr(event, "work_order_id", ""))
    seq = getattr(event, "operation_seq", 0)
    envelope = new_event(
        topic=topic,
        service="simulator",
        subject=work_order,
        event_id=derived_id("shopfloor", topic, work_order, seq),
    )
    await producer.send_and_wait(
        topic,
        orjson.dumps(event.model_dump(mode="json")),
        key=work_order.encode(),
        headers=envelope.headers(),
    )


async def place_orders(
    client: httpx.AsyncClient, cfg: ShopFloorConfig, plant: Plant, stop: asyncio.Event
) -> int:
    """POST an order every ``order_every_s`` until ``stop``; return how many were accepted.

    ``client`` is based at the orders API (``cfg.orders_url`` for a real service)."""
    rng = random.Random(cfg.seed)
    placed = 0
    headers = {"Authorization": f"Bearer {cfg.token}"}
    while not stop.is_set():
        body = order_request(plant, rng, datetime.now(UTC))
        # A new key per order, not drawn from the seeded rng: a second demo on the same
        # database would otherwise reuse the first run's keys and be answered 409.
        key = {"Idempotency-Key": str(uuid.uuid4())}
        with contextlib.suppress(httpx.HTTPError):
            r = await client.post("/v1/orders", json=body, headers=headers | key)
            if r.status_code in (200, 201):
                placed += 1
            else:
                log.warning("order refused", status=r.status_code, reason=r.text[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), cfg.order_every_s)
    return placed


async def play_shop_floor(
    bootstrap: str, plant: Plant, cfg: ShopFloorConfig, stop: asyncio.Event
) -> int:
    """Follow order-placed from now on and play each order's routing; return orders played."""
    products = {p.sku: p for p in plant.products}
    consumer = AIOKafkaConsumer(PLACED, bootstrap_servers=bootstrap, auto_offset_reset="latest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await consumer.start()
    await producer.start()
    played: set[asyncio.Task[None]] = set()
    count = 0

    async def play(placed: OrderPlaced) -> None:
        step_ms = int(cfg.step_s * 1000)
        for topic, event in operation_events(
            placed, products, plant, int(time.time() * 1000), step_ms
        ):
            if stop.is_set():
                return
            await publish(producer, topic, event)
            await asyncio.sleep(cfg.step_s / 2)

    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    placed = OrderPlaced.model_validate_json(record.value or b"{}")
                    task = asyncio.create_task(play(placed))
                    played.add(task)
                    task.add_done_callback(played.discard)
                    count += 1
    finally:
        for task in list(played):
            task.cancel()
        await asyncio.gather(*played, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
    return count
