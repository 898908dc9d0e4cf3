"""The simulated shop floor on a real broker executes a published plan: each scheduled
operation is started, then completed, on its planned machine, with derived CloudEvents ids;
a broken machine gets no new start while a whole one does."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.envelope import derived_id, parse_headers
from contracts.scheduling import OperationScheduled
from millrace.simulator.floor import Floor
from millrace.simulator.shopfloor import FloorTopics, ShopFloorConfig, run_shop_floor
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration
ROUTINGS = {"stem-cnc": (10, 20, 30)}


def op(wo: str, seq: int, machine: str, start: int, length_ms: int) -> OperationScheduled:
    order_id, _, line = wo.partition("/")
    return OperationScheduled(
        work_order_id=wo, order_id=order_id, line_no=int(line), sku="stem-cnc",
        operation_seq=seq, machine_id=machine, planned_start=start,
        planned_end=start + length_ms, plan_id="p-1",
    )  # fmt: skip


async def collect(
    bootstrap: str, topics: FloorTopics, until: float, done: Any
) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    consumer = AIOKafkaConsumer(
        topics.started, topics.completed, bootstrap_servers=bootstrap, group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen: list[tuple[str, dict[str, Any], dict[str, str]]] = []
    try:
        while time.monotonic() < until and not done(seen):
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for r in records:
                    headers = {k: v.decode() for k, v in r.headers}
                    seen.append((tp.topic, orjson.loads(r.value or b""), headers))
    finally:
        await consumer.stop()
    return seen


async def test_the_floor_executes_the_plan_and_a_broken_machine_starts_nothing(
    kafka_bootstrap: str, new_topic: Any
) -> None:
    topics = FloorTopics(
        scheduled=await new_topic(2), placed=await new_topic(1),
        started=await new_topic(2), completed=await new_topic(2),
    )  # fmt: skip
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    floor = Floor(["saw-01", "saw-02", "cnc-01", "cnc-02"], ROUTINGS, seed=5)
    cfg = ShopFloorConfig(
        break_every_s=0, step_s=0.1, group_id=f"shopfloor-{uuid.uuid4().hex[:8]}", topics=topics
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_shop_floor(settings, floor, cfg, stop))
    now = time.time_ns() // 1_000_000
    plan = [
        op("o-1/1", 10, "saw-01", now, 800),
        op("o-1/1", 20, "cnc-01", now + 800, 800),
        op("o-2/1", 10, "saw-02", now, 500),
    ]
    floor.break_machine("saw-02", now, repair_ms=600_000)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for o in plan:
            value = orjson.dumps(o.model_dump(mode="json"))
            await producer.send_and_wait(topics.scheduled, value, key=o.work_order_id.encode())
    finally:
        await producer.stop()

    def finished(seen: list[Any]) -> bool:
        return len([t for t, _, _ in seen if t == topics.completed]) >= 2

    seen = await collect(kafka_bootstrap, topics, time.monotonic() + 60, finished)
    await asyncio.sleep(1.5)  # the broken saw's operation was due long ago by now
    seen += await collect(kafka_bootstrap, topics, time.monotonic() + 1, lambda s: False)
    stop.set()
    completed_count = await asyncio.wait_for(task, 30)

    events = [(t == topics.started, d["work_order_id"], d["operation_seq"], d["machine_id"])
              for t, d, _ in seen]  # fmt: skip
    first = list(dict.fromkeys(events))
    assert first == [
        (True, "o-1/1", 10, "saw-01"),
        (False, "o-1/1", 10, "saw-01"),
        (True, "o-1/1", 20, "cnc-01"),
        (False, "o-1/1", 20, "cnc-01"),
    ]
    assert completed_count == 2
    assert not any(wo == "o-2/1" for _, wo, _, _ in events)  # saw-02 is broken
    _, _, headers = seen[0]
    envelope = parse_headers([(k, v.encode()) for k, v in headers.items()])
    assert envelope.type == "io.millrace.production.operation-started.v1"
    assert envelope.id == derived_id("shopfloor", "production.operation-started.v1", "o-1/1", 10)
    done = next(d for t, d, _ in seen if t == topics.completed)
    assert done["quantity_good"] + done["quantity_scrap"] == 1
