"""The simulated shop floor's Kafka side: it follows the published plan and reports production.

It reads ``scheduling.operation-scheduled.v1`` (the plan), ``orders.order-placed.v1`` (line
quantities) and its own ``production.operation-started.v1`` / ``-completed.v1`` from the
beginning, so a restarted simulator knows what was already done; it starts stepping the
:class:`~millrace.simulator.floor.Floor` only once it has caught up. Then, every ``step_s``,
it publishes the starts and completions that are due and now and then breaks a machine.
Events carry ids derived from (topic, work order, operation), so a replay is the same event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from contracts.envelope import derived_id, new_event
from contracts.orders import OrderPlaced
from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled
from millrace.simulator.breakdowns import Breakdowns
from millrace.simulator.floor import Floor, ProductionEvent
from shared.kafka import make_consumer, make_producer
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)
WallMs = Callable[[], int]


@dataclass(frozen=True, slots=True)
class FloorTopics:
    """Topic names; tests give their own so parallel runs never meet."""

    scheduled: str = "scheduling.operation-scheduled.v1"
    placed: str = "orders.order-placed.v1"
    started: str = "production.operation-started.v1"
    completed: str = "production.operation-completed.v1"


@dataclass(frozen=True, slots=True)
class ShopFloorConfig:
    seed: int = 1
    break_every_s: float = 120.0
    repair_s: float = 60.0
    step_s: float = 0.5
    group_id: str = "millrace-shopfloor"
    topics: FloorTopics = FloorTopics()


def apply(floor: Floor, topics: FloorTopics, topic: str, value: bytes, now: int) -> None:
    """Fold one record into the floor; a record it cannot read is logged and skipped (the
    shop floor is a reader of others' topics, not their gatekeeper)."""
    try:
        if topic == topics.scheduled:
            floor.schedule(OperationScheduled.model_validate_json(value))
        elif topic == topics.placed:
            placed = OrderPlaced.model_validate_json(value)
            for line in placed.lines:
                floor.set_quantity(f"{placed.order_id}/{line.line_no}", line.quantity)
        elif topic == topics.started:
            floor.observe_started(OperationStarted.model_validate_json(value))
        elif topic == topics.completed:
            floor.observe_completed(OperationCompleted.model_validate_json(value))
    except ValidationError as exc:
        log.warning("record skipped", topic=topic, error=str(exc)[:300])


async def _ends_at_start(
    consumer: AIOKafkaConsumer, stop: asyncio.Event
) -> dict[TopicPartition, int]:
    """The end of every assigned partition once the group has assigned them: what the floor
    reads before it acts, so a restart does not start again what was already started."""
    # aiokafka offers no event to wait on for a group's assignment.
    while not stop.is_set():
        if consumer.assignment():
            break
        await asyncio.sleep(0.1)
    return dict(await consumer.end_offsets(list(consumer.assignment())))


def topic_of(event: ProductionEvent, topics: FloorTopics) -> str:
    return topics.started if isinstance(event, OperationStarted) else topics.completed


async def publish(producer: AIOKafkaProducer, topic: str, event: ProductionEvent) -> None:
    """Publish on ``topic``; the CloudEvents type and id are the contract's whatever the topic
    is called, and the id is derived from (contract, work order, operation)."""
    contract = topic_of(event, FloorTopics())
    envelope = new_event(
        topic=contract,
        service="simulator",
        subject=event.work_order_id,
        event_id=derived_id("shopfloor", contract, event.work_order_id, event.operation_seq),
        time=datetime.fromtimestamp(event.ts / 1000, tz=UTC),
    )
    await producer.send_and_wait(
        topic,
        orjson.dumps(event.model_dump(mode="json")),
        key=event.work_order_id.encode(),
        headers=envelope.headers(),
    )


async def run_shop_floor(
    settings: ServiceSettings,
    floor: Floor,
    cfg: ShopFloorConfig,
    stop: asyncio.Event,
    wall_ms: WallMs = lambda: time.time_ns() // 1_000_000,
) -> int:
    """Execute the plan until ``stop``; return how many operations this run completed."""
    t = cfg.topics
    consumer = make_consumer(
        settings, t.scheduled, t.placed, t.started, t.completed,
        group_id=cfg.group_id, role="shopfloor",
    )  # fmt: skip
    producer = make_producer(settings, role="shopfloor")
    breakdowns = Breakdowns(cfg.seed, cfg.break_every_s, cfg.repair_s)
    await consumer.start()
    await producer.start()
    completed = 0
    try:
        ends = await _ends_at_start(consumer, stop)
        caught_up = False
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=int(cfg.step_s * 1000))
            now = wall_ms()
            for tp, records in batches.items():
                for record in records:
                    apply(floor, t, tp.topic, record.value or b"{}", now)
            caught_up = caught_up or all(
                [await consumer.position(tp) >= end for tp, end in ends.items()]
            )
            if not caught_up:
                continue
            broken = breakdowns.due(now, floor)
            if broken is not None:
                log.info(
                    "machine broken",
                    machine_id=broken.machine_id,
                    repair_s=broken.repair_ms / 1000,
                )
            broken_before = {m for m in floor.jobs if floor.broken(m)}
            for event in floor.step(now):
                await publish(producer, topic_of(event, t), event)
                completed += isinstance(event, OperationCompleted)
            for machine_id in sorted(m for m in broken_before if not floor.broken(m)):
                log.info("machine repaired", machine_id=machine_id)
    finally:
        await consumer.stop()
        await producer.stop()
    return completed
