"""What a committed plan version announces: one ``schedule-published`` event, and an
``operation-scheduled`` event for each operation whose machine or times changed.

Operations already started or done are not announced again: the shop floor is running them,
and their times in the plan are the reported ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.scheduling import (
    OperationScheduled,
    ScheduleObjective,
    SchedulePublished,
    SolveStatus,
)
from services.scheduling.domain.changes import changed
from services.scheduling.domain.model import Assignment, Plan, Problem, WorkOrder


@dataclass(frozen=True, slots=True)
class PlanNews:
    published: SchedulePublished
    scheduled: tuple[OperationScheduled, ...]


def late(assignment: Assignment, orders: dict[str, WorkOrder]) -> bool:
    wo = orders.get(assignment.work_order_id)
    return wo is not None and wo.due is not None and assignment.end > wo.due


def news(
    *,
    plan_id: str,
    version: int,
    problem: Problem,
    plan: Plan,
    triggers: tuple[str, ...],
    published_at: datetime,
) -> PlanNews:
    orders = {wo.work_order_id: wo for wo in problem.work_orders}
    moved = [a for a in changed(problem.previous, plan) if a.key not in problem.frozen]
    scheduled = tuple(
        OperationScheduled(
            work_order_id=a.work_order_id,
            order_id=orders[a.work_order_id].order_id or a.work_order_id.rpartition("/")[0],
            line_no=orders[a.work_order_id].line_no,
            sku=orders[a.work_order_id].sku,
            operation_seq=a.seq,
            machine_id=a.machine_id,
            planned_start=a.start * 1000,
            planned_end=a.end * 1000,
            plan_id=plan_id,
            plan_version=version,
        )
        for a in moved
        if a.work_order_id in orders
    )
    ends = [a.end for a in plan.assignments]
    published = SchedulePublished(
        plan_id=plan_id,
        version=version,
        triggers=list(triggers),
        status=SolveStatus(plan.status.value),
        objective=ScheduleObjective(
            weighted_tardiness=plan.objective.weighted_tardiness,
            makespan_s=max(0, plan.objective.makespan),
            moved=plan.objective.moved,
        ),
        operations_planned=len(plan.assignments),
        operations_changed=len(scheduled),
        operations_late=sum(1 for a in plan.assignments if late(a, orders)),
        operations_unplanned=len(plan.unplanned),
        work_orders=len(problem.work_orders),
        horizon_start=problem.now * 1000,
        horizon_end=max([problem.now, *ends]) * 1000,
        solve_seconds=round(max(0.0, plan.solve_seconds), 3),
        published_at=published_at,
    )
    return PlanNews(published, scheduled)
