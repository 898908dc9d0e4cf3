"""What makes the plan out of date, and how a burst of such triggers becomes one re-plan.

The consumer records a trigger in the same transaction as the state change that caused it;
the planner takes every trigger pending when it starts, so triggers that arrive while it
waits (``coalesce_ms``) or solves join one re-plan, and those arriving later the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.scheduling.domain.state import Condition


class Trigger(StrEnum):
    MACHINE_DOWN = "machine-down"
    MACHINE_UP = "machine-up"
    DRIFT = "drift"
    ORDER_CANCELLED = "order-cancelled"
    ORDER_PLACED = "order-placed"
    MASTERDATA = "masterdata"
    MANUAL = "manual"


# Declaration order is urgency: the label a coalesced re-plan is counted under.
URGENCY = {t.value: n for n, t in enumerate(Trigger)}


def newer(before: Condition | None, after: Condition) -> bool:
    """Whether a machine-state event should replace the known state: states arrive out of
    order after a replay, and only the latest ``since`` counts (ties: the later arrival)."""
    return before is None or after.since >= before.since


def availability_change(before: Condition | None, after: Condition) -> Trigger | None:
    """``machine-down`` when the machine stops being available, ``machine-up`` when it
    returns, None when its availability did not change (RUNNING to IDLE, a repeat)."""
    was = before is None or before.available
    if was and not after.available:
        return Trigger.MACHINE_DOWN
    if not was and after.available:
        return Trigger.MACHINE_UP
    return None


def drifted(planned_end: int | None, actual_end: int, limit_s: int) -> bool:
    """An operation that finished ``limit_s`` or more away from its planned end."""
    return planned_end is not None and abs(actual_end - planned_end) >= limit_s


@dataclass(frozen=True, slots=True)
class Pending:
    """A trigger recorded but not yet planned for (``at``: epoch seconds, float)."""

    id: int
    kind: str
    at: float


@dataclass(frozen=True, slots=True)
class Batch:
    """Triggers answered by one re-plan: every pending one with ``id <= up_to``."""

    up_to: int
    kinds: tuple[str, ...]  # distinct, most urgent first
    first_at: float

    @property
    def main(self) -> str:
        return self.kinds[0]


def coalesce(pending: Sequence[Pending]) -> Batch | None:
    if not pending:
        return None
    kinds = sorted({p.kind for p in pending}, key=lambda k: (URGENCY.get(k, len(URGENCY)), k))
    return Batch(
        up_to=max(p.id for p in pending),
        kinds=tuple(kinds),
        first_at=min(p.at for p in pending),
    )
