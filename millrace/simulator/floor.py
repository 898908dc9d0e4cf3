"""The simulated shop floor's execution of the published plan, as pure state.

It holds the latest assignment of each operation (a re-plan republishes the operations it
moved, so the last one read wins), what has started and completed, and each machine's job and
breakdown. :meth:`Floor.step` is called with the clock and returns the production events that
are due, in order: repairs, completions, then starts. An operation starts on its planned
machine once its planned start has come, the previous operation of its routing is complete,
and the machine is neither busy nor broken; it completes after its planned duration (a
breakdown pauses it, so downtime is added to it). Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled

OpKey = tuple[str, int]  # (work order id, operation seq)
ProductionEvent = OperationStarted | OperationCompleted
SCRAP_RATE = 0.02  # share of units scrapped, drawn per unit from a seeded rng


@dataclass(slots=True)
class MachineJob:
    """What one machine is doing: the operation it runs and when it ends, or its repair."""

    op: OpKey | None = None
    ends_at: int = 0
    broken_until: int | None = None
    paused_left: int = 0


def previous_seq(routing: tuple[int, ...], seq: int) -> int | None:
    """The routing step before ``seq`` (None for the first, or an unknown routing)."""
    earlier = [s for s in routing if s < seq]
    return max(earlier) if earlier else None


class Floor:
    def __init__(
        self,
        machines: Iterable[str],
        routings: Mapping[str, tuple[int, ...]],
        seed: int = 1,
        since_ms: int = 0,
        plan_id: str | None = None,
    ) -> None:
        self.jobs = {m: MachineJob() for m in machines}
        self.routings = dict(routings)
        self.seed = seed
        self.since_ms = since_ms
        self.plan_id = plan_id
        self.plan: dict[OpKey, OperationScheduled] = {}
        self.quantities: dict[str, int] = {}
        self.started: set[OpKey] = set()
        self.completed: set[OpKey] = set()
        # started (read from Kafka) and not completed: machine and start time, until the
        # operation is on its machine; one of another plan never is
        self.resumed: dict[OpKey, tuple[str, int]] = {}

    # -- what is read from Kafka ------------------------------------------------------------

    def schedule(self, op: OperationScheduled) -> None:
        """The latest assignment of an operation; one already started keeps its machine.

        With a ``plan_id`` the floor follows that plan only (another scheduler may share the
        topic)."""
        key = (op.work_order_id, op.operation_seq)
        if (self.plan_id is not None and op.plan_id != self.plan_id) or key in self.completed:
            return
        self.plan[key] = op

    def set_quantity(self, work_order_id: str, quantity: int) -> None:
        self.quantities[work_order_id] = quantity

    def observe_started(self, event: OperationStarted) -> None:
        """A start read back from Kafka (ours, or a previous run's). Its plan entry may come
        later in the read, so the machine is taken at the next :meth:`step`."""
        key = (event.work_order_id, event.operation_seq)
        if key in self.started:
            return
        self.started.add(key)
        self.resumed[key] = (event.machine_id, event.ts)

    def observe_completed(self, event: OperationCompleted) -> None:
        key = (event.work_order_id, event.operation_seq)
        self.started.add(key)
        self.completed.add(key)
        self.resumed.pop(key, None)
        self.plan.pop(key, None)  # done: the plan keeps what is still to do
        job = self.jobs.get(event.machine_id)
        if job is not None and job.op == key:
            job.op = None

    # -- breakdowns ---------------------------------------------------------------------------

    def break_machine(self, machine_id: str, now: int, repair_ms: int) -> None:
        """Break a machine until ``now + repair_ms``; the operation it runs is paused."""
        job = self.jobs[machine_id]
        if job.broken_until is not None:
            return
        job.broken_until = now + repair_ms
        if job.op is not None:
            job.paused_left = max(0, job.ends_at - now)

    def broken(self, machine_id: str) -> bool:
        return self.jobs[machine_id].broken_until is not None

    def working(self, machine_id: str) -> bool:
        job = self.jobs[machine_id]
        return job.op is not None and job.broken_until is None

    def pending_machines(self) -> set[str]:
        """Machines that have planned operations not started yet."""
        return {op.machine_id for k, op in self.plan.items() if k not in self.started}

    # -- the clock --------------------------------------------------------------------------

    def step(self, now: int) -> list[ProductionEvent]:
        """The events due at ``now``, applied to the state."""
        out: list[ProductionEvent] = []
        for job in self.jobs.values():
            if job.broken_until is not None and job.broken_until <= now:
                job.broken_until = None
                if job.op is not None:
                    job.ends_at = now + job.paused_left
        self._resume(now)
        for machine_id, job in self.jobs.items():
            if job.op is not None and job.broken_until is None and job.ends_at <= now:
                out.append(self._complete(machine_id, job.op, now))
                job.op = None
        for key in sorted(self._startable(now), key=lambda k: (self.plan[k].planned_start, k)):
            op = self.plan[key]
            job = self.jobs[op.machine_id]
            if job.op is not None or job.broken_until is not None:
                continue
            job.op, job.ends_at = key, now + (op.planned_end - op.planned_start)
            self.started.add(key)
            out.append(
                OperationStarted(
                    work_order_id=op.work_order_id,
                    order_id=op.order_id,
                    line_no=op.line_no,
                    operation_seq=op.operation_seq,
                    machine_id=op.machine_id,
                    ts=now,
                )
            )
        return out

    def _resume(self, now: int) -> None:
        """Put operations started before (a restart) back on their machines, to end at their
        start plus their planned duration."""
        for key, (machine_id, ts) in list(self.resumed.items()):
            op, job = self.plan.get(key), self.jobs.get(machine_id)
            if op is None or job is None or job.op is not None:
                continue
            job.op, job.ends_at = key, max(now, ts + op.planned_end - op.planned_start)
            del self.resumed[key]

    def _startable(self, now: int) -> list[OpKey]:
        ready: list[OpKey] = []
        for key, op in self.plan.items():
            if key in self.started or op.planned_start > now or op.machine_id not in self.jobs:
                continue
            if op.planned_end < self.since_ms:
                # ended before the floor started: history, not work (a plan still due is
                # republished with new times when the scheduler re-plans)
                continue
            before = previous_seq(self.routings.get(op.sku, ()), op.operation_seq)
            if before is None or (op.work_order_id, before) in self.completed:
                ready.append(key)
        return ready

    def _complete(self, machine_id: str, key: OpKey, now: int) -> OperationCompleted:
        self.completed.add(key)
        op = self.plan.pop(key, None)
        work_order_id, seq = key
        order_id, _, line = work_order_id.rpartition("/")
        quantity = self.quantities.get(work_order_id, 1)
        rng = random.Random(f"millrace-scrap:{self.seed}:{work_order_id}:{seq}")
        scrap = sum(rng.random() < SCRAP_RATE for _ in range(quantity))
        return OperationCompleted(
            work_order_id=work_order_id,
            order_id=op.order_id if op else order_id,
            line_no=op.line_no if op else int(line or 1),
            operation_seq=seq,
            machine_id=machine_id,
            ts=now,
            quantity_good=quantity - scrap,
            quantity_scrap=scrap,
        )
