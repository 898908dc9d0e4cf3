"""``millrace run scheduling`` killed with SIGKILL while it solves a re-plan: after the restart
exactly one new plan version exists, made from every pending trigger, and its events are on
Kafka once each with their deterministic ``ce_id``s."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.scheduling import (
    PUBLISHED,
    SCHEDULED,
    TOKENS,
    db_url,
    fetch,
    fresh_database,
    load_sample_plant,
    make_settings,
    offsets,
    placed,
    prepare,
    publish,
    read_topic,
    wait_for,
)
from support.telemetry import ServiceProcess, free_port

from contracts.envelope import derived_id
from contracts.orders import Priority
from services.scheduling.settings import SchedulingSettings

N_ORDERS = 40


async def test_sigkill_while_solving_restarts_into_one_consistent_plan(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    await prepare(settings)
    plan_id = settings.scheduling_plan_id
    env = {
        "MILLRACE_DATABASE_URL": db_url(settings),
        "MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MILLRACE_SCHEDULING_TOKENS": json.dumps([t.model_dump() for t in TOKENS]),
        "MILLRACE_SCHEDULING_CONSUMER_GROUP": settings.scheduling_consumer_group,
        "MILLRACE_SCHEDULING_PLAN_ID": plan_id,
        "MILLRACE_SCHEDULING_TIME_LIMIT_S": "60",  # long: the kill lands while it solves
        "MILLRACE_SCHEDULING_COALESCE_MS": "500",
        "MILLRACE_SCHEDULING_RELAY_POLL_MS": "200",
    }
    start = {t: await offsets(settings, t) for t in (PUBLISHED, SCHEDULED)}
    service = ServiceProcess("scheduling", env, tmp_path / "scheduling.log", free_port())
    service.start()
    try:
        await service.wait_ready()
        await load_sample_plant(settings)

        async def quiet() -> bool:  # the master data's re-plans are done
            return not await fetch(settings, "SELECT 1 FROM scheduling.triggers")

        await wait_for(quiet, 60, "the master-data plans")
        before = await version(settings)
        # Due today with days of work: late whatever the plan, so CP-SAT cannot prove an
        # optimum quickly and uses its time limit.
        run = uuid.uuid4().hex[:8]
        today = datetime.now(UTC).date()
        orders = [
            placed(
                f"k-{run}-{n}",
                [("frame-road", 3), ("hub-rear", 5)],
                due=today,
                priority=Priority.HIGH if n % 3 else Priority.NORMAL,
            )
            for n in range(N_ORDERS)
        ]
        await publish(settings, [("orders.order-placed.v1", o.order_id, o) for o in orders])

        async def consumed() -> bool:
            rows = await fetch(settings, "SELECT count(*) AS n FROM scheduling.orders")
            return bool(rows) and rows[0]["n"] == N_ORDERS

        await wait_for(consumed, 60, "the orders consumed")
        await asyncio.sleep(2.0)  # past the coalescing wait: solving
        service.kill()
        assert await version(settings) == before, "the re-plan finished before the kill"
        assert await fetch(settings, "SELECT 1 FROM scheduling.triggers")

        service.env["MILLRACE_SCHEDULING_TIME_LIMIT_S"] = "2"
        service.start()
        await service.wait_ready()

        async def replanned() -> bool:
            return await version(settings) > before and await quiet()

        await wait_for(replanned, 60, "the re-plan after the restart")
        await asyncio.sleep(1.5)  # nothing else is pending: no further version may appear
        after = await version(settings)
    finally:
        service.terminate()
    assert after == before + 1
    (plan,) = await fetch(
        settings,
        "SELECT * FROM scheduling.plans WHERE plan_id = $1 AND version = $2",
        plan_id,
        after,
    )
    assert "order-placed" in plan["triggers"]
    rows = await fetch(
        settings,
        "SELECT work_order_id FROM scheduling.plan_assignments WHERE plan_id = $1 AND version = $2",
        plan_id,
        after,
    )
    assert len(rows) == plan["planned"]
    wanted = {f"{o.order_id}/{n}" for o in orders for n in (1, 2)}
    assert wanted <= {r["work_order_id"] for r in rows}

    # On Kafka: each version published once; the new version's operations once each.
    def of_version(recs: list[tuple[dict[str, str], dict[str, Any]]]) -> list[str]:
        return [
            h["ce_id"]
            for h, d in recs
            if d.get("plan_id") == plan_id and d.get("plan_version") == after
        ]

    published_id = derived_id("scheduling", plan_id, after, "published")
    records = await read_topic(
        settings, start[PUBLISHED], lambda recs: any(h["ce_id"] == published_id for h, _ in recs)
    )
    mine = [h["ce_id"] for h, d in records if d.get("plan_id") == plan_id]
    assert len(mine) == len(set(mine)) == after
    scheduled = await read_topic(
        settings, start[SCHEDULED], lambda recs: len(of_version(recs)) >= plan["changed"]
    )
    ids = of_version(scheduled)
    assert len(ids) == len(set(ids)) == plan["changed"]


async def version(settings: SchedulingSettings) -> int:
    rows = await fetch(settings, "SELECT coalesce(max(version), 0) AS v FROM scheduling.plans")
    return int(rows[0]["v"]) if rows else 0
