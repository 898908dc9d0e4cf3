"""After the load: close the last windows and wait, within a bound, until everything settled.

The telemetry windows close by each device's own clock only (the run turned the idle clock
off), so one reading per device, on the device's partition and stamped past every window the
load could have opened, closes them: another device's reading would close nothing for it. The
closing reading has a metric of its own, whose windows stay open, so the checks take it as an
input that moves its device's clock and nothing else. Then the stateful services must have
consumed everything and published their outboxes, and the planner must have no trigger left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer

from bench.chaos import readback
from bench.chaos.records import Rec, in_order
from bench.chaos.windows import decode
from contracts.telemetry import Quality

READINGS = "telemetry.readings.v1"
CLOSE_METRIC = "chaos-close"
CLOSER_AHEAD_MS = 70_000
"""Past the largest window (60 s) plus the allowed lateness of the run."""
CONSUMED = {
    "millrace-orders": (
        "masterdata.products.v1", "masterdata.customers.v1", "scheduling.operation-scheduled.v1",
        "production.operation-started.v1", "production.operation-completed.v1",
    ),
    "millrace-scheduling": (
        "masterdata.machines.v1", "masterdata.products.v1", "orders.order-placed.v1",
        "orders.order-cancelled.v1", "telemetry.machine-states.v1",
        "production.operation-started.v1", "production.operation-completed.v1",
    ),
}  # fmt: skip


def closers(readings: Iterable[Rec], now_ms: int) -> list[tuple[int, str, int]]:
    """(partition, device, ts) of one closing reading for every device on the readings
    topic, on the partition its readings are on, ``CLOSER_AHEAD_MS`` past the newest reading
    of the topic or the wall clock, whichever is later."""
    devices: dict[tuple[int, str], None] = {}
    newest = now_ms
    for rec in in_order(list(readings)):
        batch = decode(rec.value)
        if batch is None:
            continue
        devices[(rec.partition, batch.device_id)] = None
        newest = max([newest, *(r.ts for r in batch.readings if r.quality is not Quality.BAD)])
    return [(p, device, newest + CLOSER_AHEAD_MS) for p, device in devices]


async def send_closers(bootstrap: str) -> int:
    """One closing reading for every device that sent readings; how many were sent."""
    now_ms = time.time_ns() // 1_000_000
    todo = closers(await readback.read_topics(bootstrap, [READINGS]), now_ms)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = []
        for p, device, ts in todo:
            reading = {"metric": CLOSE_METRIC, "ts": ts, "value": 0}
            value = orjson.dumps({"device_id": device, "readings": [reading]})
            sent.append(await producer.send(READINGS, value, key=device.encode(), partition=p))
        await asyncio.gather(*sent)
        return len(todo)
    finally:
        await producer.stop()


async def settled(bootstrap: str, database_url: str) -> dict[str, int]:
    """What is still outstanding; all zero once settled."""
    left = {f"lag_{g}": await readback.group_lag(bootstrap, g, t) for g, t in CONSUMED.items()}
    left["orders_outbox_unsent"] = await readback.unsent(database_url, "orders")
    left["scheduling_outbox_unsent"] = await readback.unsent(database_url, "scheduling")
    left["scheduling_triggers"] = await readback.pending_triggers(database_url)
    return left


async def wait_settled(bootstrap: str, database_url: str, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            left = await settled(bootstrap, database_url)
        except Exception as exc:  # noqa: BLE001 - a service still starting: try again
            left = {"error": 1}
            print(f"chaos: drain check failed: {exc!r}", flush=True)
        if not any(left.values()) or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(2.0)
