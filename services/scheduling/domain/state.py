"""What the service knows about the plant, as plain values read from its tables.

The adapters load one :class:`Snapshot` per re-plan; :mod:`.problem` turns it into the solver's
:class:`~.model.Problem`. Times are epoch seconds, like the model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.scheduling.domain.model import Assignment, OpKey, Priority

UNAVAILABLE_STATES = frozenset({"DOWN", "MAINTENANCE"})


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """A machine from master data: what it can do and where it stands."""

    machine_id: str
    work_center: str
    capabilities: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoutingStep:
    """One operation of a product's routing (setup once per work order, run per unit)."""

    seq: int
    name: str
    capability: str
    setup_s: int
    run_s_per_unit: int


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an open order: it becomes the work order ``<order_id>/<line_no>``."""

    order_id: str
    customer: str
    line_no: int
    sku: str
    quantity: int
    due: int  # end of the order's due date, UTC
    priority: Priority

    @property
    def work_order_id(self) -> str:
        return work_order_id(self.order_id, self.line_no)


@dataclass(frozen=True, slots=True)
class Condition:
    """A machine's last known state and since when (from machine-state events)."""

    state: str
    since: int

    @property
    def available(self) -> bool:
        return self.state not in UNAVAILABLE_STATES


@dataclass(frozen=True, slots=True)
class Progress:
    """What the shop floor reported for one operation; either time may be missing (events
    of the two topics arrive in any order)."""

    machine_id: str
    started: int | None = None
    completed: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: int
    machines: Mapping[str, MachineInfo]
    routings: Mapping[str, tuple[RoutingStep, ...]]  # by sku
    lines: tuple[OrderLine, ...]  # open (not cancelled) order lines
    conditions: Mapping[str, Condition] = field(default_factory=dict)
    progress: Mapping[OpKey, Progress] = field(default_factory=dict)
    previous: Mapping[OpKey, Assignment] = field(default_factory=dict)


def work_order_id(order_id: str, line_no: int) -> str:
    return f"{order_id}/{line_no}"
