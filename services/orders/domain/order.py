"""The order aggregate and its ISA-95 state machine.

Forward progress is *derived from facts*: the set of operations scheduled, started and
completed. Any arrival order of those facts leads to the same status (a completion before
its start still counts as production having started), and the status never moves backwards.
Cancelled, rejected and shipped are terminal: later facts are kept in the timeline only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.base import Contract
from contracts.orders import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    Priority,
)

S = OrderStatus
RANK = {
    S.RECEIVED: 0,
    S.ACCEPTED: 1,
    S.SCHEDULED: 2,
    S.IN_PRODUCTION: 3,
    S.COMPLETED: 4,
    S.SHIPPED: 5,
}
TERMINAL = frozenset({S.REJECTED, S.CANCELLED, S.SHIPPED})
CANCELLABLE = frozenset({S.RECEIVED, S.ACCEPTED, S.SCHEDULED})
FACTS = ("scheduled", "started", "completed")

OpKey = tuple[int, int]


class TransitionNotAllowedError(Exception):
    """The order's current state does not allow the requested change (HTTP 409)."""

    def __init__(self, status: OrderStatus, action: str) -> None:
        super().__init__(f"cannot {action} an order that is {status.value}")
        self.status = status
        self.action = action


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an order, as ``GET /v1/orders/{id}`` shows it."""

    at: datetime
    kind: str
    status: OrderStatus
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Order:
    """An order: its lines, status, the operation facts seen so far, and what is new.

    ``timeline`` and ``events`` collect what a command produced; the unit of work persists
    the first and writes the second to the outbox in the same transaction.
    """

    order_id: str
    customer: str
    lines: tuple[OrderLine, ...]
    due_date: date
    priority: Priority
    currency: str
    placed_at: datetime
    status: OrderStatus = S.RECEIVED
    facts: dict[str, set[OpKey]] = field(default_factory=lambda: {f: set() for f in FACTS})
    timeline: list[TimelineEntry] = field(default_factory=list)
    events: list[Contract] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)

    def _record(self, at: datetime, kind: str, **detail: Any) -> None:
        self.timeline.append(TimelineEntry(at, kind, self.status, detail))

    def _move(self, to: OrderStatus, at: datetime, cause: str) -> None:
        previous, self.status = self.status, to
        self._record(at, "status-changed", previous=previous.value, cause=cause)
        self.events.append(
            OrderStatusChanged(
                order_id=self.order_id,
                customer=self.customer,
                previous=previous,
                status=to,
                cause=cause,
                at=at,
            )
        )

    def cancel(self, reason: str, at: datetime) -> None:
        """Cancel before production starts; raise TransitionNotAllowedError otherwise."""
        if self.status not in CANCELLABLE:
            raise TransitionNotAllowedError(self.status, "cancel")
        self._move(S.CANCELLED, at, "api")
        self.timeline[-1].detail["reason"] = reason
        self.events.append(
            OrderCancelled(
                order_id=self.order_id, customer=self.customer, reason=reason, cancelled_at=at
            )
        )

    def ship(self, at: datetime) -> None:
        """Mark a completed order shipped (the plant's dispatch confirms it)."""
        if self.status != S.COMPLETED:
            raise TransitionNotAllowedError(self.status, "ship")
        self._move(S.SHIPPED, at, "api")

    def observe(self, fact: str, line_no: int, seq: int, at: datetime, cause: str) -> None:
        """Record that operation ``seq`` of line ``line_no`` was scheduled/started/completed,
        then advance the status as far as the facts now justify."""
        if fact not in FACTS:
            raise ValueError(f"unknown fact {fact!r}")
        known = any(line.line_no == line_no for line in self.lines)
        self._record(at, f"operation-{fact}", line_no=line_no, operation_seq=seq, known=known)
        if not known:
            return
        self.facts[fact].add((line_no, seq))
        target = self._derived_status()
        if self.status in TERMINAL or RANK[target] <= RANK.get(self.status, 0):
            return
        self._move(target, at, cause)

    def _derived_status(self) -> OrderStatus:
        completed = self.facts["completed"]
        if all(
            sum(1 for ln, _ in completed if ln == line.line_no) >= line.operations
            for line in self.lines
        ):
            return S.COMPLETED
        if self.facts["started"] or completed:
            return S.IN_PRODUCTION
        if self.facts["scheduled"]:
            return S.SCHEDULED
        return S.ACCEPTED


def place(
    *,
    order_id: str,
    customer: str,
    lines: tuple[OrderLine, ...],
    due_date: date,
    priority: Priority,
    currency: str,
    at: datetime,
) -> Order:
    """A validated order is received and accepted at once; ``order-placed`` is emitted."""
    order = Order(order_id, customer, lines, due_date, priority, currency, at)
    order._record(at, "received")
    order.status = S.ACCEPTED
    order._record(at, "accepted")
    order.events.append(
        OrderPlaced(
            order_id=order_id,
            customer=customer,
            lines=list(lines),
            due_date=due_date,
            priority=priority,
            status=S.ACCEPTED,
            total_minor=order.total_minor,
            currency=currency,
            placed_at=at,
        )
    )
    return order
