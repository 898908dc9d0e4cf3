"""After the load: close the last windows and wait, within a bound, until everything settled.

The telemetry windows close by event time only (the run turned the idle clock off), so one
reading per partition, stamped past every window the load could have opened, closes them. Then
the stateful services must have consumed everything and published their outboxes, and the
planner must have no trigger left.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer

from bench.chaos import readback

READINGS = "telemetry.readings.v1"
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


async def send_closers(bootstrap: str) -> int:
    """One reading on every partition of the readings topic; how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        parts = await producer.partitions_for(READINGS)
        ts = time.time_ns() // 1_000_000 + CLOSER_AHEAD_MS
        for p in sorted(parts):
            device = f"chaos-closer-{p:02d}"
            value = orjson.dumps(
                {"device_id": device, "readings": [{"metric": "close", "ts": ts, "value": 0}]}
            )
            await producer.send_and_wait(READINGS, value, key=device.encode(), partition=p)
        return len(parts)
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
