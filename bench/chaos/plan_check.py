"""The final plan against the independent plan validator (``tests/support/scheduling_validator``):
once everything has settled, a manual re-plan is requested, and the version it makes is checked
against the problem rebuilt from the service's tables at that version's ``now`` (nothing moves
any more, so it is the problem the planner solved), with the version before as its previous
plan."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from bench.chaos.config import ChaosConfig
from bench.chaos.records import Verdict
from millrace.demo.orders import PLANT_TOKEN
from services.scheduling.adapters import queries
from services.scheduling.adapters.snapshot import assignments, latest_version, snapshot
from services.scheduling.domain.problem import Rules, build

# The validator lives with the tests (they import it as ``support.*``, tests/ on their path); the
# chaos run takes the very same module, under the same name, so mypy sees it once.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support.scheduling_validator import violations

PLAN_ID = "plant"


async def final_replan(url: str, database_url: str, timeout_s: float) -> int:
    """Ask for a re-plan and wait until its version is stored and no trigger is left."""
    conn = await asyncpg.connect(database_url)
    try:
        before = await latest_version(conn, PLAN_ID)
        auth = {"Authorization": f"Bearer {PLANT_TOKEN}"}
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            (await client.post("/v1/schedule/replan", headers=auth)).raise_for_status()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            version = await latest_version(conn, PLAN_ID)
            left = await conn.fetchval("SELECT count(*) FROM scheduling.triggers")
            if version > before and not left:
                return version
            await asyncio.sleep(1.0)
        raise TimeoutError(f"no plan after version {before} within {timeout_s:.0f} s")
    finally:
        await conn.close()


async def check_final_plan(cfg: ChaosConfig, database_url: str) -> Verdict:
    v = Verdict("scheduling_validator")
    rules = Rules(repair_s=cfg.repair_s, duration_scale=cfg.duration_scale)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        head = await queries.header(pool, PLAN_ID, None)
        if head is None:
            v.fail("no plan stored")
            return v
        plan, _ = await queries.stored_plan(pool, head)
        async with pool.acquire() as conn:
            state, version = await snapshot(conn, int(head["planned_at"]), PLAN_ID)
            before = await assignments(conn, PLAN_ID, version - 1) if version > 1 else {}
        problem = build(dataclasses.replace(state, previous=before), rules)
    finally:
        await pool.close()
    for problem_text in violations(problem, plan):
        v.fail(f"version {version}: {problem_text}")
    v.figures = {
        "version": version,
        "status": str(head["status"]),
        "work_orders": len(problem.work_orders),
        "assignments": len(plan.assignments),
        "frozen": len(problem.frozen),
        "unplanned": len(plan.unplanned),
    }
    return v
