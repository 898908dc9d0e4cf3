"""The quick re-plan: when a machine goes down, a repaired plan within a fraction of a second,
even while the planner is in the middle of a solve.

The current plan sends work to the broken machine, and the planner may be solving for up to its
time limit (for triggers that came before) before it gets to the new one. So this loop, on its
own, takes every pending ``machine-down`` trigger it has not answered yet, builds the problem
from a fresh snapshot and commits :func:`..domain.quick.quick_plan` as the next version, leaving
the triggers pending. The planner's solve in flight then fails its version check and starts
again from the repaired plan; its plan, when it changes anything, is the version after. A crash
forgets which triggers were answered, so at worst one more repaired version is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.scheduling import metrics as m
from services.scheduling.adapters.plans import commit_plan
from services.scheduling.adapters.postgres import REPLAN_CHANNEL
from services.scheduling.adapters.snapshot import pending, snapshot
from services.scheduling.domain.problem import Rules, build
from services.scheduling.domain.publish import news
from services.scheduling.domain.quick import quick_plan
from services.scheduling.domain.triggers import Trigger
from shared.logging import get_logger

log = get_logger(__name__)


class Repairer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        rules: Rules,
        *,
        plan_id: str,
        poll_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._rules = rules
        self._plan_id = plan_id
        self._poll_s = poll_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._answered = 0  # the highest machine-down trigger id a repaired plan answered

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Repair until ``stop``; sleep on LISTEN/NOTIFY or ``poll_s`` between runs."""
        listener = await self._pool.acquire()
        try:
            await listener.add_listener(REPLAN_CHANNEL, self.wake)
            while not stop.is_set():
                self._wake.clear()
                if await self.repair_once() is None:
                    continue  # another version came first: repair that one at once
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=self._poll_s, return_when="FIRST_COMPLETED"
                )
                for task in (waiter, stopper):
                    task.cancel()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(REPLAN_CHANNEL, self.wake)
            await self._pool.release(listener)

    async def repair_once(self) -> bool | None:
        """Commit a repaired plan for unanswered machine-down triggers: True when committed,
        False when there was nothing to do (no such trigger, no plan yet to repair, or the quick
        plan failed), None when another version was committed first (try again)."""
        now = int(self._clock())
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            down = [
                p
                for p in await pending(conn)
                if p.kind == Trigger.MACHINE_DOWN and p.id > self._answered
            ]
            if not down:
                return False
            state, version = await snapshot(conn, now, self._plan_id)
        problem = build(state, self._rules)
        if not problem.previous:
            self._answered = max(p.id for p in down)
            return False  # nothing published yet: the planner's first plan is the answer
        try:
            plan = await asyncio.to_thread(quick_plan, problem)
        except Exception:
            self._answered = max(p.id for p in down)
            m.SOLVER_FAILURES.inc()
            log.exception("quick re-plan failed; the planner's plan follows")
            return False
        at = datetime.now(UTC)
        kinds = (Trigger.MACHINE_DOWN.value,)
        what = news(
            plan_id=self._plan_id,
            version=version + 1,
            problem=problem,
            plan=plan,
            triggers=kinds,
            published_at=at,
        )
        async with self._pool.acquire() as conn:
            done = await commit_plan(
                conn,
                plan_id=self._plan_id,
                version=version + 1,
                problem=problem,
                plan=plan,
                news=what,
                up_to=0,  # the triggers stay pending for the planner's solve
                at=at,
            )
        if not done:
            return None
        self._answered = max(p.id for p in down)
        m.PLANS.labels(kinds[0], plan.status.value).inc()
        m.LAST_PLAN.set(self._clock())
        m.REPLAN_DELAY.observe(max(0.0, self._clock() - min(p.at for p in down)))
        log.info("repaired plan committed", plan_id=self._plan_id, version=version + 1)
        return True
