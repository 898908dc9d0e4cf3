"""Response models of the scheduling API (times as RFC 3339 and as epoch ms)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from contracts.scheduling import ScheduleObjective, SolveStatus

PLAN_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
MACHINE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class AssignmentOut(BaseModel):
    order_id: str
    work_order_id: str
    seq: int
    machine_id: str
    start: datetime
    end: datetime
    start_ms: int
    end_ms: int
    late: bool


class PlanOut(BaseModel):
    """One version of the plan (a ``WorkSchedule``) with its assignments."""

    plan_id: str
    version: int
    status: SolveStatus
    triggers: list[str]
    planned_at: datetime
    objective: ScheduleObjective
    operations_planned: int
    operations_changed: int
    operations_late: int
    unplanned: list[tuple[str, int]]
    horizon_end: datetime
    solve_seconds: float
    assignments: list[AssignmentOut]


class QueueOut(BaseModel):
    """A machine's operations in the current plan that have not ended, in start order."""

    machine_id: str
    plan_id: str | None
    version: int | None
    operations: list[AssignmentOut]


class ReplanOut(BaseModel):
    trigger_id: int
    status: str = "queued"
