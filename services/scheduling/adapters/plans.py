"""Committing a plan version: the plan, its assignments, its events in the outbox and the
removal of the triggers it answers, in ONE transaction.

So a crash (even SIGKILL while solving) leaves either the whole version or nothing: the
triggers are still pending after a restart and the next planner run makes that version once.
Versions are serialised by a transaction-scoped advisory lock and a check that the version
read with the snapshot is still the latest, so two replicas never commit the same version.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.scheduling.adapters.postgres import OUTBOX_CHANNEL
from services.scheduling.adapters.rows import published_row, scheduled_row
from services.scheduling.adapters.snapshot import latest_version
from services.scheduling.domain.model import Plan, Problem
from services.scheduling.domain.publish import PlanNews, late

LOCK_KEY = "millrace.scheduling.planner"


async def commit_plan(
    conn: Any,
    *,
    plan_id: str,
    version: int,
    problem: Problem,
    plan: Plan,
    news: PlanNews,
    up_to: int,
    at: datetime,
) -> bool:
    """Store version ``version``; False (nothing written) when another planner got there."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", LOCK_KEY)
        if await latest_version(conn, plan_id) != version - 1:
            return False
        event = news.published
        await conn.execute(
            "INSERT INTO scheduling.plans (plan_id, version, planned_at, triggers, status,"
            " tardiness, makespan, moved, planned, changed, late, unplanned, horizon_end,"
            " solve_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb,"
            " $13, $14)",
            plan_id,
            version,
            problem.now,
            event.triggers,
            event.status.value,
            event.objective.weighted_tardiness,
            event.objective.makespan_s,
            event.objective.moved,
            event.operations_planned,
            event.operations_changed,
            event.operations_late,
            orjson.dumps([list(k) for k in plan.unplanned]).decode(),
            event.horizon_end // 1000,
            event.solve_seconds,
        )
        orders = {wo.work_order_id: wo for wo in problem.work_orders}
        await conn.copy_records_to_table(
            "plan_assignments",
            schema_name="scheduling",
            records=[
                (
                    plan_id,
                    version,
                    a.work_order_id,
                    a.seq,
                    a.machine_id,
                    a.start,
                    a.end,
                    late(a, orders),
                )
                for a in plan.assignments
            ],
        )
        rows = [published_row(event), *(scheduled_row(e, at) for e in news.scheduled)]
        await conn.execute(
            "INSERT INTO scheduling.outbox (topic, msg_key, ce_id, headers, payload)"
            " SELECT x.topic, x.key, x.ce_id, x.headers, x.payload FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::jsonb[], $5::bytea[]) WITH ORDINALITY"
            " AS x(topic, key, ce_id, headers, payload, n) ORDER BY x.n",
            *(list(col) for col in zip(*rows, strict=True)),
        )
        await conn.execute("DELETE FROM scheduling.triggers WHERE id <= $1", up_to)
        await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
    return True


async def drop_triggers(conn: Any, up_to: int) -> None:
    """The triggers up to ``up_to`` are answered by the latest version as it stands."""
    await conn.execute("DELETE FROM scheduling.triggers WHERE id <= $1", up_to)
