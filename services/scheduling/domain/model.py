"""The scheduling problem and its plan, as plain values (a flexible job shop).

Times are integer **seconds since the Unix epoch** (the service converts to and from the epoch
milliseconds of the contracts). A work order is one order line; its operations run one after
another in routing order, each on exactly one of its eligible machines, for that machine's
duration. Machines run one operation at a time and not while unavailable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    RUSH = "rush"


# Weight of one second of tardiness, by priority (rush > high > normal > low).
TARDINESS_WEIGHT: Mapping[Priority, int] = {
    Priority.LOW: 1,
    Priority.NORMAL: 2,
    Priority.HIGH: 4,
    Priority.RUSH: 8,
}


@dataclass(frozen=True, slots=True)
class Interval:
    """``[start, end)`` in epoch seconds."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Machine:
    machine_id: str
    work_center: str = ""
    # When the machine cannot work (DOWN until its expected repair, planned maintenance,
    # outside its work centre's calendar), sorted and disjoint.
    unavailable: tuple[Interval, ...] = ()


@dataclass(frozen=True, slots=True)
class OperationSpec:
    """One operation of a work order: ``durations`` maps each eligible machine to the
    operation's duration there in seconds (``setup_s + quantity * run_s_per_unit`` in the
    plant; per machine in flexible job-shop instances)."""

    seq: int
    durations: Mapping[str, int]
    name: str = ""


@dataclass(frozen=True, slots=True)
class WorkOrder:
    work_order_id: str
    operations: tuple[OperationSpec, ...]  # routing order
    due: int | None = None  # epoch seconds; None: no due date (job-shop instances)
    priority: Priority = Priority.NORMAL
    release: int = 0  # not before this time
    order_id: str = ""
    line_no: int = 1
    sku: str = ""


OpKey = tuple[str, int]  # (work_order_id, seq)


@dataclass(frozen=True, slots=True)
class Assignment:
    work_order_id: str
    seq: int
    machine_id: str
    start: int
    end: int

    @property
    def key(self) -> OpKey:
        return (self.work_order_id, self.seq)


@dataclass(frozen=True, slots=True)
class Problem:
    """Everything a plan is made from, at time ``now``.

    ``frozen``: operations that have started: they stay on their machine and times (their end is
    the expected end, or the actual one when ``done``). ``done``: operations completed (with their
    actual times in ``frozen`` when known): they take no capacity after their end.
    ``previous``: the last plan's assignments, used as solver hints and for stability.
    """

    now: int
    machines: tuple[Machine, ...]
    work_orders: tuple[WorkOrder, ...]
    frozen: Mapping[OpKey, Assignment] = field(default_factory=dict)
    done: frozenset[OpKey] = frozenset()
    previous: Mapping[OpKey, Assignment] = field(default_factory=dict)


class SolveStatus(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible"  # CP-SAT improved or confirmed a feasible plan within its limit
    GREEDY = "greedy"  # only the greedy dispatch's plan (the solver found nothing better)
    INFEASIBLE = "infeasible"  # no plan exists (e.g. an operation with no eligible machine)
    EMPTY = "empty"  # nothing to plan


@dataclass(frozen=True, slots=True)
class Objective:
    """Objective values, compared lexicographically in this order."""

    weighted_tardiness: int  # sum over work orders of weight * seconds late at their last op
    makespan: int  # seconds from ``now`` to the last operation's end
    moved: int  # operations whose machine or start changed against ``previous``


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan: one assignment per operation not done (frozen ones included)."""

    assignments: tuple[Assignment, ...]
    objective: Objective
    status: SolveStatus
    lower_bound: int | None = None  # a proven lower bound on the makespan, when known
    solve_seconds: float = 0.0
    unplanned: tuple[OpKey, ...] = ()  # operations that could not be planned (no machine)
