"""Reads for the API: plan versions, their assignments, machine queues, the Gantt input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from services.scheduling.domain.model import (
    Assignment,
    Objective,
    OperationSpec,
    Plan,
    Priority,
    SolveStatus,
    WorkOrder,
)

# The order id of a work order ``<order_id>/<line_no>``.
ORDER_OF = r"regexp_replace(a.work_order_id, '/[0-9]+$', '')"


def _time(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def assignment_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "work_order_id": row["work_order_id"],
        "seq": row["seq"],
        "machine_id": row["machine_id"],
        "start": _time(row["start_s"]),
        "end": _time(row["end_s"]),
        "start_ms": row["start_s"] * 1000,
        "end_ms": row["end_s"] * 1000,
        "late": row["late"],
    }


async def header(pool: asyncpg.Pool, plan_id: str, version: int | None) -> asyncpg.Record | None:
    """A stored plan version (the latest when ``version`` is None)."""
    if version is None:
        return await pool.fetchrow(
            "SELECT * FROM scheduling.plans WHERE plan_id = $1 ORDER BY version DESC LIMIT 1",
            plan_id,
        )
    return await pool.fetchrow(
        "SELECT * FROM scheduling.plans WHERE plan_id = $1 AND version = $2", plan_id, version
    )


async def assignments(
    pool: asyncpg.Pool,
    plan_id: str,
    version: int,
    *,
    customer: str | None = None,
    machine_id: str | None = None,
    ending_after: int | None = None,
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT a.*, {ORDER_OF} AS order_id FROM scheduling.plan_assignments a"  # noqa: S608
        f" LEFT JOIN scheduling.orders o ON o.order_id = {ORDER_OF}"
        " WHERE a.plan_id = $1 AND a.version = $2 AND ($3::text IS NULL OR o.customer = $3)"
        " AND ($4::text IS NULL OR a.machine_id = $4) AND ($5::bigint IS NULL OR a.end_s > $5)"
        " ORDER BY a.start_s, a.machine_id, a.work_order_id, a.seq",
        plan_id,
        version,
        customer,
        machine_id,
        ending_after,
    )
    return [assignment_view(r) for r in rows]


def plan_view(head: asyncpg.Record, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "plan_id": head["plan_id"],
        "version": head["version"],
        "status": head["status"],
        "triggers": list(head["triggers"]),
        "planned_at": _time(head["planned_at"]),
        "objective": {
            "weighted_tardiness": head["tardiness"],
            "makespan_s": head["makespan"],
            "moved": head["moved"],
        },
        "operations_planned": head["planned"],
        "operations_changed": head["changed"],
        "operations_late": head["late"],
        "unplanned": [tuple(k) for k in orjson.loads(head["unplanned"])],
        "horizon_end": _time(head["horizon_end"]),
        "solve_seconds": head["solve_seconds"],
        "assignments": rows,
    }


async def machine_known(pool: asyncpg.Pool, machine_id: str) -> bool:
    found = await pool.fetchval(
        "SELECT true FROM scheduling.machines WHERE machine_id = $1", machine_id
    )
    return bool(found)


async def stored_plan(pool: asyncpg.Pool, head: asyncpg.Record) -> tuple[Plan, list[WorkOrder]]:
    """A stored version as the domain's plan, with the work orders it names (their due times
    and orders, each operation lasting what it lasts in the plan): what a Gantt chart needs,
    even for orders that have completed or been cancelled since."""
    rows = await pool.fetch(
        f"SELECT a.*, {ORDER_OF} AS order_id, o.due, o.priority"  # noqa: S608
        " FROM scheduling.plan_assignments a"
        f" LEFT JOIN scheduling.orders o ON o.order_id = {ORDER_OF}"
        " WHERE a.plan_id = $1 AND a.version = $2 ORDER BY a.work_order_id, a.seq",
        head["plan_id"],
        head["version"],
    )
    plan = Plan(
        assignments=tuple(
            Assignment(r["work_order_id"], r["seq"], r["machine_id"], r["start_s"], r["end_s"])
            for r in rows
        ),
        objective=Objective(head["tardiness"], head["makespan"], head["moved"]),
        status=SolveStatus(head["status"]),
        solve_seconds=head["solve_seconds"],
        unplanned=tuple((str(w), int(s)) for w, s in orjson.loads(head["unplanned"])),
    )
    orders: dict[str, WorkOrder] = {}
    for r in rows:
        wo = orders.get(r["work_order_id"])
        op = OperationSpec(r["seq"], {r["machine_id"]: r["end_s"] - r["start_s"]})
        orders[r["work_order_id"]] = WorkOrder(
            work_order_id=r["work_order_id"],
            operations=(*(wo.operations if wo else ()), op),
            due=r["due"],
            priority=Priority(r["priority"] or "normal"),
            order_id=r["order_id"],
            line_no=_line_no(r["work_order_id"]),
        )
    return plan, list(orders.values())


def _line_no(work_order_id: str) -> int:
    tail = work_order_id.rpartition("/")[2]
    return int(tail) if tail.isdigit() and int(tail) >= 1 else 1
