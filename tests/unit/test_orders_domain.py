"""The order state machine: forward progress derived from facts, in any arrival order."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from contracts.orders import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    Priority,
)
from services.orders.domain.order import Order, TransitionNotAllowedError, place

S = OrderStatus
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def status_of(order: Order) -> OrderStatus:
    """Read through a call, so mypy does not narrow the status across commands."""
    return order.status


def new_order(ops: tuple[int, ...] = (2,)) -> Order:
    lines = tuple(
        OrderLine(line_no=i + 1, sku="sku-a", quantity=2, operations=n, unit_price_minor=150)
        for i, n in enumerate(ops)
    )
    order = place(
        order_id="o-1",
        customer="acme",
        lines=lines,
        due_date=date(2026, 2, 1),
        priority=Priority.NORMAL,
        currency="EUR",
        at=T0,
    )
    order.events.clear()
    return order


def test_placing_accepts_and_emits_order_placed() -> None:
    order = place(
        order_id="o-1",
        customer="acme",
        lines=(OrderLine(line_no=1, sku="s", quantity=3, operations=1, unit_price_minor=250),),
        due_date=date(2026, 2, 1),
        priority=Priority.RUSH,
        currency="EUR",
        at=T0,
    )
    assert status_of(order) is S.ACCEPTED
    assert [e.kind for e in order.timeline] == ["received", "accepted"]
    [event] = order.events
    assert isinstance(event, OrderPlaced)
    assert event.total_minor == 750
    assert event.status is S.ACCEPTED


def test_in_order_lifecycle() -> None:
    order = new_order()
    order.observe("scheduled", 1, 10, T0, "scheduling.operation-scheduled.v1")
    assert status_of(order) is S.SCHEDULED
    order.observe("started", 1, 10, T0, "production.operation-started.v1")
    assert status_of(order) is S.IN_PRODUCTION
    order.observe("completed", 1, 10, T0, "production.operation-completed.v1")
    assert status_of(order) is S.IN_PRODUCTION
    order.observe("completed", 1, 20, T0, "production.operation-completed.v1")
    assert status_of(order) is S.COMPLETED
    changes = [e for e in order.events if isinstance(e, OrderStatusChanged)]
    assert [(c.previous, c.status) for c in changes] == [
        (S.ACCEPTED, S.SCHEDULED),
        (S.SCHEDULED, S.IN_PRODUCTION),
        (S.IN_PRODUCTION, S.COMPLETED),
    ]
    order.ship(T0)
    assert status_of(order) is S.SHIPPED


FACTS = [
    ("scheduled", 1, 10),
    ("scheduled", 1, 20),
    ("started", 1, 10),
    ("completed", 1, 10),
    ("started", 1, 20),
    ("completed", 1, 20),
]


@pytest.mark.parametrize("perm", list(itertools.permutations(range(len(FACTS))))[::37])
def test_any_arrival_order_ends_completed_and_never_goes_back(perm: tuple[int, ...]) -> None:
    order = new_order()
    seen = [order.status]
    for i in perm:
        fact, line, seq = FACTS[i]
        order.observe(fact, line, seq, T0, "test")
        seen.append(order.status)
    assert status_of(order) is S.COMPLETED
    ranks = [list(S).index(s) for s in seen]
    assert ranks == sorted(ranks)


def test_completion_before_start_counts_as_production() -> None:
    order = new_order((2,))
    order.observe("completed", 1, 10, T0, "test")
    assert status_of(order) is S.IN_PRODUCTION
    order.observe("started", 1, 10, T0, "test")
    assert status_of(order) is S.IN_PRODUCTION


def test_every_line_must_complete() -> None:
    order = new_order((1, 1))
    order.observe("completed", 1, 10, T0, "test")
    assert status_of(order) is S.IN_PRODUCTION
    order.observe("completed", 2, 10, T0, "test")
    assert status_of(order) is S.COMPLETED


def test_unknown_line_is_kept_in_timeline_only() -> None:
    order = new_order()
    order.observe("started", 9, 10, T0, "test")
    assert status_of(order) is S.ACCEPTED
    assert order.timeline[-1].detail["known"] is False
    assert order.events == []


@pytest.mark.parametrize("status", [S.ACCEPTED, S.SCHEDULED])
def test_cancel_before_production(status: OrderStatus) -> None:
    order = new_order()
    if status is S.SCHEDULED:
        order.observe("scheduled", 1, 10, T0, "test")
    order.events.clear()
    order.cancel("changed my mind", T0)
    assert status_of(order) is S.CANCELLED
    assert [type(e) for e in order.events] == [OrderStatusChanged, OrderCancelled]
    order.observe("started", 1, 10, T0, "test")
    assert status_of(order) is S.CANCELLED
    assert order.timeline[-1].kind == "operation-started"


def test_cancel_refused_once_production_started() -> None:
    order = new_order()
    order.observe("started", 1, 10, T0, "test")
    with pytest.raises(TransitionNotAllowedError, match="in_production"):
        order.cancel("too late", T0)
    with pytest.raises(TransitionNotAllowedError):
        order.ship(T0)


def test_cancel_twice_is_refused() -> None:
    order = new_order()
    order.cancel("x", T0)
    with pytest.raises(TransitionNotAllowedError):
        order.cancel("x", T0)


def test_unknown_fact_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown fact"):
        new_order().observe("teleported", 1, 10, T0, "test")
