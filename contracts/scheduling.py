"""Scheduling contracts: the published work schedule and the job orders it plans.

A *work order* (ISA-95 ``JobOrder``) produces one order line; its id is
``<order_id>/<line_no>``. A *plan* (ISA-95 ``WorkSchedule``) assigns every open operation
(a ``JobOrder`` step, ISA-95 ``SegmentRequirement``) to one machine (``Equipment``) and a time
slot. The plant has one plan id; each re-plan is a new ``version`` of it, and every version is
kept. ``operation-scheduled`` events are keyed by work order id, so the events of one work order
stay ordered; ``schedule-published`` events are keyed by plan id, so versions arrive in order.
Consumers still tolerate any arrival order across topics.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt

from contracts.base import Contract
from contracts.types import EntityId, EpochMillis

Count = Annotated[StrictInt, Field(ge=0)]


class OperationScheduled(Contract):
    """``scheduling.operation-scheduled.v1``: operation ``operation_seq`` of a work order was
    planned on ``machine_id`` for ``[planned_start, planned_end)`` (epoch ms).

    Key: ``work_order_id``. A re-plan publishes an operation again only when its machine or
    times changed; ``plan_version`` names the plan version that did (absent from producers
    older than that field).
    """

    work_order_id: EntityId
    order_id: EntityId
    line_no: Annotated[StrictInt, Field(ge=1)]
    sku: EntityId
    operation_seq: Annotated[StrictInt, Field(ge=1)]
    machine_id: EntityId
    planned_start: EpochMillis
    planned_end: EpochMillis
    plan_id: EntityId | None = None
    plan_version: Annotated[StrictInt, Field(ge=1)] | None = None


class SolveStatus(StrEnum):
    """How good the plan is known to be: ``optimal`` (proven), ``feasible`` (improved by the
    solver within its time limit), ``greedy`` (the dispatch rule's plan), ``infeasible`` (some
    operation has no machine able to run it), ``empty`` (nothing to plan)."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    GREEDY = "greedy"
    INFEASIBLE = "infeasible"
    EMPTY = "empty"


class ScheduleObjective(Contract):
    """The plan's objective values, compared lexicographically in this order:
    ``weighted_tardiness`` (priority weight times seconds late, summed over work orders),
    ``makespan_s`` (seconds from the planning time to the last operation's end), ``moved``
    (operations whose machine or start changed against the previous version)."""

    weighted_tardiness: Count
    makespan_s: Count
    moved: Count


class SchedulePublished(Contract):
    """``scheduling.schedule-published.v1``: version ``version`` of work schedule ``plan_id``
    was committed. Key: ``plan_id``.

    ``triggers`` name what caused the re-plan (``order-placed``, ``order-cancelled``,
    ``machine-down``, ``machine-up``, ``drift``, ``masterdata``, ``manual``;
    a burst of triggers is coalesced into one version). Counts: ``operations_planned``
    (assignments in the plan, started ones included), ``operations_changed`` (those published
    again on ``scheduling.operation-scheduled.v1``), ``operations_late`` (ending after their
    work order's due time), ``operations_unplanned`` (no eligible machine). The horizon spans
    ``[horizon_start, horizon_end)`` in epoch ms: the planning time to the last end.
    """

    plan_id: EntityId
    version: Annotated[StrictInt, Field(ge=1)]
    triggers: list[Annotated[str, Field(min_length=1, max_length=64)]]
    status: SolveStatus
    objective: ScheduleObjective
    operations_planned: Count
    operations_changed: Count
    operations_late: Count
    operations_unplanned: Count
    work_orders: Count
    horizon_start: EpochMillis
    horizon_end: EpochMillis
    solve_seconds: Annotated[float, Field(ge=0)] = 0.0
    published_at: datetime


Ratio = Annotated[float, Field(ge=0, le=1)]


class OeeReported(Contract):
    """``scheduling.oee-reported.v1``: overall equipment effectiveness of one machine over one
    closed period ``[period_start, period_end)`` (epoch ms; hours by default). Key:
    ``machine_id``.

    ``availability`` is ``running_s / planned_s``: time in the RUNNING state against the
    period minus the plan's calendar (off-shift time and planned maintenance). ``performance``
    is ``ideal_s / actual_s`` over the operations completed in the period: their duration from
    the routing (setup plus units times run time) against their reported start to completion,
    at most 1. ``quality`` is ``good / (good + scrap)`` over the same completions. ``oee`` is
    their product. A factor is null when its denominator is zero (no planned time, nothing
    completed); ``oee`` is null when a factor is. Shifts and days are sums of hours: consumers
    aggregate the seconds and counts, not the ratios.
    """

    machine_id: EntityId
    work_center: Annotated[str, Field(max_length=200)] = ""
    period_start: EpochMillis
    period_end: EpochMillis
    planned_s: Count
    running_s: Count
    ideal_s: Count
    actual_s: Count
    good: Count
    scrap: Count
    availability: Ratio | None
    performance: Ratio | None
    quality: Ratio | None
    oee: Ratio | None
    reported_at: datetime
