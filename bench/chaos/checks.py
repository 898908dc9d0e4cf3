"""Read back everything the invariants need and run every checker on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos import readback
from bench.chaos.config import ChaosConfig
from bench.chaos.dlq import Poison, check_dlq, check_outboxes
from bench.chaos.drain import wait_settled
from bench.chaos.late import check_late
from bench.chaos.load import LoadTally
from bench.chaos.orders import TOPICS as ORDER_TOPICS
from bench.chaos.orders import check_orders
from bench.chaos.plan_check import check_final_plan, final_replan
from bench.chaos.records import Verdict
from bench.chaos.scheduling import PUBLISHED, SCHEDULED, check_scheduling
from bench.chaos.windows import check_delivered, check_windows, expected_windows

READINGS = "telemetry.readings.v1"
AGGREGATES = "telemetry.aggregates.v1"
LATE = "telemetry.readings.v1.late"
STARTED = "production.operation-started.v1"
DLQ_CONSUMERS = {
    READINGS: frozenset({"telemetry"}),
    "production.operation-completed.v1": frozenset({"orders", "scheduling"}),
}


async def dlq_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.endswith(".dlq"))
    finally:
        await admin.close()


async def telemetry_verdicts(cfg: ChaosConfig, bootstrap: str) -> tuple[Verdict, Verdict]:
    """The windows and the late readings, both against one computation from the readings."""
    readings = await readback.read_topics(bootstrap, [READINGS])
    aggregates = await readback.read_topics(bootstrap, [AGGREGATES])
    late = await readback.read_topics(bootstrap, [LATE])
    expected = expected_windows(readings, cfg.windows_ms, cfg.lateness_ms, cfg.backfill_horizon_ms)
    return check_windows(expected, aggregates), check_late(expected, late)


async def wait_telemetry(
    cfg: ChaosConfig, bootstrap: str, timeout_s: float
) -> tuple[Verdict, Verdict]:
    """Re-read until no closed window and no late record is missing any more, or the bound;
    the last verdicts."""
    deadline = time.monotonic() + timeout_s
    while True:
        windows, late = await telemetry_verdicts(cfg, bootstrap)
        missing = windows.figures.get("windows_missing") or late.figures.get("late_records_missing")
        if not missing or time.monotonic() >= deadline:
            return windows, late
        await asyncio.sleep(5.0)


async def validated_plan(cfg: ChaosConfig, scheduling_url: str, database_url: str) -> Verdict:
    try:
        await final_replan(scheduling_url, database_url, cfg.drain_timeout_s)
    except (TimeoutError, httpx.HTTPError) as exc:
        v = Verdict("scheduling_validator")
        v.fail(f"the final re-plan did not happen: {exc!r}")
        return v
    return await check_final_plan(cfg, database_url)


async def run_checks(
    cfg: ChaosConfig,
    bootstrap: str,
    database_url: str,
    scheduling_url: str,
    tally: LoadTally,
    poison: Iterable[Poison],
) -> list[Verdict]:
    windows, late = await wait_telemetry(cfg, bootstrap, cfg.drain_timeout_s)
    validated = await validated_plan(cfg, scheduling_url, database_url)
    # The final re-plan's events must be out of the outbox before they are compared.
    await wait_settled(bootstrap, database_url, cfg.drain_timeout_s)
    readings = await readback.read_topics(bootstrap, [READINGS])
    order_events = await readback.read_topics(bootstrap, ORDER_TOPICS)
    plan_events = await readback.read_topics(bootstrap, [SCHEDULED, PUBLISHED])
    started = await readback.read_topics(bootstrap, [STARTED])
    dead = await readback.read_topics(bootstrap, await dlq_topics(bootstrap))
    version, plan = await readback.latest_plan(database_url)
    unsent = {
        "orders": await readback.unsent(database_url, "orders"),
        "scheduling": await readback.unsent(database_url, "scheduling"),
    }
    return [
        windows,
        late,
        check_delivered(tally.readings_acked, readings),
        check_orders(await readback.order_rows(database_url), order_events, tally.accepted),
        check_scheduling(version, plan, plan_events, started),
        validated,
        check_outboxes(unsent),
        check_dlq(poison, dead, DLQ_CONSUMERS),
    ]
