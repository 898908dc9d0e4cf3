"""The objective of a plan, and plans made from the solvers' indexed schedules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from services.scheduling.domain.model import (
    TARDINESS_WEIGHT,
    Assignment,
    Objective,
    OpKey,
    Plan,
    Problem,
    SolveStatus,
)
from services.scheduling.domain.shop import Shop

# An indexed schedule: per operation to plan, (machine index, start relative to now).
Schedule = Sequence[tuple[int, int]]


def evaluate(problem: Problem, assignments: Iterable[Assignment]) -> Objective:
    """Weighted tardiness, makespan and moves of ``assignments`` (see :class:`Objective`)."""
    last_end: dict[str, int] = {}
    moved = 0
    latest = problem.now
    for a in assignments:
        last_end[a.work_order_id] = max(last_end.get(a.work_order_id, a.end), a.end)
        latest = max(latest, a.end)
        moved += _moved(problem.previous, a)
    tardiness = 0
    for wo in problem.work_orders:
        end = last_end.get(wo.work_order_id)
        if wo.due is not None and end is not None and end > wo.due:
            tardiness += TARDINESS_WEIGHT[wo.priority] * (end - wo.due)
    return Objective(weighted_tardiness=tardiness, makespan=latest - problem.now, moved=moved)


def _moved(previous: Mapping[OpKey, Assignment], a: Assignment) -> int:
    before = previous.get(a.key)
    return int(before is not None and (before.machine_id, before.start) != (a.machine_id, a.start))


def rank(objective: Objective) -> tuple[int, int, int]:
    """The lexicographic order: tardiness, then makespan, then stability."""
    return (objective.weighted_tardiness, objective.makespan, objective.moved)


def assignments_of(shop: Shop, schedule: Schedule) -> tuple[Assignment, ...]:
    planned = (shop.assignment(i, m, s) for i, (m, s) in enumerate(schedule))
    return (*shop.fixed, *planned)


def plan_of(
    shop: Shop,
    schedule: Schedule,
    status: SolveStatus,
    *,
    lower_bound: int | None = None,
    seconds: float = 0.0,
) -> Plan:
    assignments = assignments_of(shop, schedule)
    if shop.unplanned:
        status = SolveStatus.INFEASIBLE
    elif not shop.ops:
        status = SolveStatus.EMPTY
    return Plan(
        assignments=assignments,
        objective=evaluate(shop.problem, assignments),
        status=status,
        lower_bound=lower_bound,
        solve_seconds=seconds,
        unplanned=shop.unplanned,
    )
