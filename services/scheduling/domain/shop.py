"""A :class:`~.model.Problem` flattened into integer indices for the greedy, CP-SAT and LNS code.

Times here are seconds **relative to** ``problem.now`` (so CP-SAT works with small domains).
Operations to plan are those neither done nor frozen; each keeps a lower bound on its start
(``now``, the work order's release, and the end of earlier operations that are frozen or done
with known times) and its predecessor among the operations to plan. Frozen operations that are not
done stay as they are and block their machine; done ones take no capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.scheduling.domain.model import TARDINESS_WEIGHT, Assignment, OpKey, Problem


@dataclass(frozen=True, slots=True)
class Op:
    key: OpKey
    job: int
    options: tuple[tuple[int, int], ...]  # (machine index, duration), eligible machines only
    lb: int  # earliest start (relative)
    pred: int | None  # index of the previous operation to plan of the same work order

    @property
    def min_duration(self) -> int:
        return min(d for _, d in self.options)


@dataclass(frozen=True, slots=True)
class Shop:
    problem: Problem
    machine_ids: tuple[str, ...]
    ops: tuple[Op, ...]
    jobs: tuple[tuple[int, ...], ...]  # per work order: its operations to plan, routing order
    due: tuple[int | None, ...]  # per work order, relative
    weight: tuple[int, ...]
    fixed: tuple[Assignment, ...]  # frozen, not done: kept verbatim in every plan
    busy: tuple[tuple[tuple[int, int], ...], ...]  # per machine: blocked [start, end), relative
    unplanned: tuple[OpKey, ...]  # no eligible machine (or after such an operation)
    fixed_end: int  # latest end of a fixed operation (relative), 0 when none

    @property
    def origin(self) -> int:
        return self.problem.now

    def assignment(self, op: int, machine: int, start: int) -> Assignment:
        duration = dict(self.ops[op].options)[machine]
        key = self.ops[op].key
        return Assignment(
            key[0], key[1], self.machine_ids[machine], start + self.origin,
            start + duration + self.origin,
        )  # fmt: skip


def build_shop(problem: Problem) -> Shop:
    """Index ``problem``; operations without an eligible machine (and their successors) are
    listed as unplanned instead of failing the whole plan."""
    now = problem.now
    machine_ids = tuple(m.machine_id for m in problem.machines)
    index = {m: i for i, m in enumerate(machine_ids)}
    busy: list[list[tuple[int, int]]] = [
        [(max(iv.start - now, 0), iv.end - now) for iv in m.unavailable if iv.end > now]
        for m in problem.machines
    ]
    fixed: list[Assignment] = []
    ops: list[Op] = []
    jobs: list[tuple[int, ...]] = []
    unplanned: list[OpKey] = []
    for job, wo in enumerate(problem.work_orders):
        lb = max(wo.release - now, 0)
        pred: int | None = None
        blocked = False
        own: list[int] = []
        for spec in wo.operations:
            key = (wo.work_order_id, spec.seq)
            frozen = problem.frozen.get(key)
            if key in problem.done or frozen is not None:
                if frozen is not None:
                    lb = max(lb, frozen.end - now)
                    if key not in problem.done:
                        fixed.append(frozen)
                        if frozen.machine_id in index and frozen.end > now:
                            busy[index[frozen.machine_id]].append(
                                (max(frozen.start - now, 0), frozen.end - now)
                            )
                continue
            options = tuple(
                (index[m], int(d)) for m, d in sorted(spec.durations.items())
                if m in index and d >= 0
            )  # fmt: skip
            if blocked or not options:
                blocked = True
                unplanned.append(key)
                continue
            ops.append(Op(key, job, options, lb, pred))
            pred = len(ops) - 1
            own.append(pred)
        jobs.append(tuple(own))
    return Shop(
        problem=problem,
        machine_ids=machine_ids,
        ops=tuple(ops),
        jobs=tuple(jobs),
        due=tuple(None if wo.due is None else wo.due - now for wo in problem.work_orders),
        weight=tuple(TARDINESS_WEIGHT[wo.priority] for wo in problem.work_orders),
        fixed=tuple(fixed),
        busy=tuple(_merged(b) for b in busy),
        unplanned=tuple(unplanned),
        fixed_end=max((a.end - now for a in fixed), default=0),
    )


def _merged(intervals: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)
