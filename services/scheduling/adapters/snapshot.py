"""Reading what the planner needs from the service's tables, in one consistent snapshot."""

from __future__ import annotations

from typing import Any

import orjson

from services.scheduling.domain.model import Assignment, OpKey, Priority
from services.scheduling.domain.state import (
    Condition,
    MachineInfo,
    OrderLine,
    Progress,
    RoutingStep,
    Snapshot,
)
from services.scheduling.domain.triggers import Pending


async def latest_version(conn: Any, plan_id: str) -> int:
    version = await conn.fetchval(
        "SELECT max(version) FROM scheduling.plans WHERE plan_id = $1", plan_id
    )
    return int(version or 0)


async def assignments(conn: Any, plan_id: str, version: int) -> dict[OpKey, Assignment]:
    rows = await conn.fetch(
        "SELECT work_order_id, seq, machine_id, start_s, end_s FROM scheduling.plan_assignments"
        " WHERE plan_id = $1 AND version = $2",
        plan_id,
        version,
    )
    out = {}
    for r in rows:
        a = Assignment(r["work_order_id"], r["seq"], r["machine_id"], r["start_s"], r["end_s"])
        out[a.key] = a
    return out


async def pending(conn: Any) -> list[Pending]:
    rows = await conn.fetch(
        "SELECT id, kind, extract(epoch FROM created_at)::float8 AS at"
        " FROM scheduling.triggers ORDER BY id"
    )
    return [Pending(r["id"], r["kind"], r["at"]) for r in rows]


async def snapshot(conn: Any, now: int, plan_id: str) -> tuple[Snapshot, int]:
    """The plant's state and the latest plan version (its assignments as ``previous``)."""
    machines = {
        r["machine_id"]: MachineInfo(
            r["machine_id"], r["work_center"], frozenset(r["capabilities"])
        )
        for r in await conn.fetch("SELECT * FROM scheduling.machines")
    }
    routings = {
        r["sku"]: tuple(RoutingStep(**step) for step in orjson.loads(r["routing"]))
        for r in await conn.fetch("SELECT sku, routing FROM scheduling.products")
    }
    lines = [
        OrderLine(
            order_id=r["order_id"],
            customer=r["customer"],
            line_no=ln["line_no"],
            sku=ln["sku"],
            quantity=ln["quantity"],
            due=r["due"],
            priority=Priority(r["priority"]),
        )
        for r in await conn.fetch(
            "SELECT * FROM scheduling.orders WHERE placed AND NOT cancelled ORDER BY seq"
        )
        for ln in orjson.loads(r["lines"])
    ]
    conditions = {
        r["machine_id"]: Condition(r["state"], r["since"])
        for r in await conn.fetch("SELECT * FROM scheduling.machine_states")
    }
    progress = {
        (r["work_order_id"], r["seq"]): Progress(r["machine_id"], r["started"], r["completed"])
        for r in await conn.fetch("SELECT * FROM scheduling.progress")
    }
    version = await latest_version(conn, plan_id)
    previous = await assignments(conn, plan_id, version) if version else {}
    state = Snapshot(now, machines, routings, tuple(lines), conditions, progress, previous)
    return state, version
