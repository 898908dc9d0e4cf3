"""The re-planner: wait for triggers, let a burst settle, solve, commit one plan version.

Triggers are rows the consumer (or the API) committed with the change that caused them. A run
takes every trigger pending in one snapshot of the state, so a burst becomes one re-plan, and
solves in a worker thread (the solver is CPU-bound and must not stall the event loop that
serves the API and the consumer). The version, its events and the triggers' removal commit
together (:mod:`.plans`): after a crash the triggers are still pending and the re-plan runs
again, from the same state, exactly once.

When a machine went down, :mod:`.repairer` has usually committed a repaired plan already (and
left the triggers pending): the snapshot's previous plan is that one, and when machine-down
triggers are all there is, a solve that finds nothing better removes them without publishing a
copy of it.
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
from services.scheduling.adapters.plans import commit_plan, drop_triggers
from services.scheduling.adapters.postgres import REPLAN_CHANNEL
from services.scheduling.adapters.snapshot import pending, snapshot
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.model import Plan, Problem, SolveStatus
from services.scheduling.domain.problem import Rules, build
from services.scheduling.domain.publish import news
from services.scheduling.domain.triggers import Batch, Trigger, coalesce
from shared.logging import get_logger

log = get_logger(__name__)
Solve = Callable[..., Plan]


class Planner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        solve: Solve,
        rules: Rules,
        *,
        plan_id: str,
        time_limit_s: float,
        workers: int,
        coalesce_s: float,
        poll_s: float = 5.0,
        quick: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._solve = solve
        self._rules = rules
        self._plan_id = plan_id
        self._limit = time_limit_s
        self._workers = workers
        self._coalesce_s = coalesce_s
        self._poll_s = poll_s
        self._quick = quick
        self._clock = clock
        self._wake = asyncio.Event()

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Re-plan until ``stop``; sleep on LISTEN/NOTIFY or ``poll_s`` between runs."""
        listener = await self._pool.acquire()
        try:
            await listener.add_listener(REPLAN_CHANNEL, self.wake)
            while not stop.is_set():
                self._wake.clear()
                if await self.replan_once(stop):
                    continue
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

    async def _settle(self, stop: asyncio.Event) -> bool:
        """Wait until ``coalesce_s`` after the first pending trigger; False if none pends."""
        async with self._pool.acquire() as conn:
            batch = coalesce(await pending(conn))
        if batch is None:
            return False
        delay = batch.first_at + self._coalesce_s - self._clock()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return not stop.is_set()

    async def replan_once(self, stop: asyncio.Event) -> bool:
        """Make one plan version for the pending triggers; False when none were pending."""
        if not await self._settle(stop):
            return False
        now = int(self._clock())
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            batch = coalesce(await pending(conn))
            state, version = await snapshot(conn, now, self._plan_id)
        if batch is None:
            return False
        problem = build(state, self._rules)
        started = time.perf_counter()
        plan = await asyncio.to_thread(self._plan, problem)
        m.SOLVE.observe(time.perf_counter() - started)
        if self._quick and batch.kinds == (Trigger.MACHINE_DOWN,) and _unchanged(problem, plan):
            # the latest version (the repaired one) is already this plan: no second copy (other
            # triggers still get their version, so each kind is seen answered on Kafka)
            async with self._pool.acquire() as conn:
                await drop_triggers(conn, batch.up_to)
            return True
        await self._commit(problem, plan, batch, version + 1)
        return True

    async def _commit(self, problem: Problem, plan: Plan, batch: Batch, version: int) -> bool:
        """Store ``plan`` as ``version`` with its events; False when another planner did first."""
        at = datetime.now(UTC)
        what = news(
            plan_id=self._plan_id,
            version=version,
            problem=problem,
            plan=plan,
            triggers=batch.kinds,
            published_at=at,
        )
        async with self._pool.acquire() as conn:
            done = await commit_plan(
                conn,
                plan_id=self._plan_id,
                version=version,
                problem=problem,
                plan=plan,
                news=what,
                up_to=batch.up_to,
                at=at,
            )
        if not done:
            log.info("another planner committed this version first", version=version)
            return False
        self._observe(plan, what.published.operations_late, batch.main, batch.first_at)
        log.info(
            "plan committed",
            plan_id=self._plan_id,
            version=version,
            triggers=list(batch.kinds),
            status=plan.status.value,
            changed=len(what.scheduled),
        )
        return True

    def _plan(self, problem: Problem) -> Plan:
        """The solver's plan or, should the solver fail on this problem, the greedy dispatch's:
        a problem the solver cannot handle must not stop re-planning for good (the triggers
        would stay pending and every retry fail the same way)."""
        try:
            return self._solve(problem, time_limit_s=self._limit, workers=self._workers)
        except Exception:
            m.SOLVER_FAILURES.inc()
            log.exception("solver failed; committing the greedy dispatch's plan instead")
            return dispatch(problem)

    def _observe(self, plan: Plan, late: int, main: str, first: float) -> None:
        m.PLANS.labels(main, plan.status.value).inc()
        m.LAST_PLAN.set(self._clock())
        bad = plan.status == SolveStatus.INFEASIBLE or bool(plan.unplanned)
        m.INFEASIBLE.set(1 if bad else 0)
        m.LATE.set(late)
        m.REPLAN_DELAY.observe(max(0.0, self._clock() - first))


def _unchanged(problem: Problem, plan: Plan) -> bool:
    """Whether ``plan`` is the previous plan exactly (there is one, and nothing moved)."""
    return bool(problem.previous) and plan.objective.moved == 0
