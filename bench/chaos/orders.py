"""The orders invariant: every order's events on the orders topics tell the story its row in
the orders database ends with, and every order the API accepted exists exactly once.

Per order: one ``order-placed`` (accepted); the ``order-status-changed`` events, in their
partition's order, chain ``previous`` to the status before, each a forward move of the state
machine (or a cancellation while still cancellable, a shipment once completed) and nothing after
a terminal status; the last one is the row's status; ``order-cancelled`` exactly when the row is
cancelled; as many distinct events as the row's ``event_seq`` says it emitted. The same
``ce_id`` twice with the same content is a redelivery (counted); with two contents, a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.chaos.records import Rec, Verdict, in_order

PLACED = "orders.order-placed.v1"
CANCELLED = "orders.order-cancelled.v1"
CHANGED = "orders.order-status-changed.v1"
TOPICS = (PLACED, CANCELLED, CHANGED)

RANK = {"received": 0, "accepted": 1, "scheduled": 2, "in_production": 3, "completed": 4,
        "shipped": 5}  # fmt: skip
TERMINAL = frozenset({"rejected", "cancelled", "shipped"})
CANCELLABLE = frozenset({"received", "accepted", "scheduled"})


@dataclass(frozen=True)
class OrderRow:
    status: str
    event_seq: int


@dataclass
class _History:
    placed: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events(self) -> int:
        return len(self.placed) + len(self.cancelled) + len(self.changes)


def valid_move(previous: str, status: str) -> bool:
    if previous in TERMINAL:
        return False
    if status == "cancelled":
        return previous in CANCELLABLE
    if status == "shipped":
        return previous == "completed"
    return status in RANK and previous in RANK and RANK[status] > RANK[previous]


def _histories(events: Iterable[Rec], v: Verdict) -> tuple[dict[str, _History], int]:
    seen: dict[str, bytes | None] = {}
    out: dict[str, _History] = {}
    redelivered = 0
    for rec in in_order(list(events)):
        if rec.ce_id in seen:
            if seen[rec.ce_id] != rec.value:
                v.fail(f"ce_id {rec.ce_id} on {rec.topic} has two contents")
            redelivered += 1
            continue
        seen[rec.ce_id] = rec.value
        data = orjson.loads(rec.value or b"{}")
        h = out.setdefault(data["order_id"], _History())
        {PLACED: h.placed, CANCELLED: h.cancelled, CHANGED: h.changes}[rec.topic].append(data)
    return out, redelivered


def _check_one(order_id: str, row: OrderRow, h: _History, v: Verdict) -> None:
    if len(h.placed) != 1:
        v.fail(f"{order_id}: {len(h.placed)} order-placed events")
        return
    status = h.placed[0]["status"]
    if status != "accepted":
        v.fail(f"{order_id}: placed as {status}")
    path = [status]
    for change in h.changes:
        if change["previous"] != status:
            v.fail(f"{order_id}: change from {change['previous']} while {status} ({path})")
        elif not valid_move(status, change["status"]):
            v.fail(f"{order_id}: invalid move {status} -> {change['status']}")
        status = change["status"]
        path.append(status)
    if status != row.status:
        v.fail(f"{order_id}: events end at {status}, database says {row.status} ({path})")
    if (row.status == "cancelled") != bool(h.cancelled) or len(h.cancelled) > 1:
        v.fail(f"{order_id}: {len(h.cancelled)} order-cancelled events, status {row.status}")
    if "cancelled" in path and ("in_production" in path or "completed" in path):
        v.fail(f"{order_id}: cancelled and produced ({path})")
    if h.events != row.event_seq:
        v.fail(f"{order_id}: {h.events} distinct events, event_seq {row.event_seq}")


def check_orders(
    rows: Mapping[str, OrderRow], events: Iterable[Rec], accepted: Mapping[str, str]
) -> Verdict:
    """``rows``: order id -> its row; ``accepted``: Idempotency-Key -> the order id a 2xx
    answer gave. The database must hold exactly the accepted orders."""
    v = Verdict("orders_consistent")
    histories, redelivered = _histories(events, v)
    for order_id, row in rows.items():
        _check_one(order_id, row, histories.get(order_id, _History()), v)
    for order_id in histories.keys() - rows.keys():
        v.fail(f"{order_id}: events on Kafka but no row in the database")
    ids = list(accepted.values())
    for order_id in sorted({i for i in ids if ids.count(i) > 1}):
        v.fail(f"{order_id}: returned for two Idempotency-Keys")
    for order_id in sorted(set(ids) - rows.keys()):
        v.fail(f"{order_id}: accepted over HTTP but not in the database")
    for order_id in sorted(rows.keys() - set(ids)):
        v.fail(f"{order_id}: in the database but never accepted over HTTP")
    statuses: dict[str, int] = {}
    for row in rows.values():
        statuses[row.status] = statuses.get(row.status, 0) + 1
    v.figures = {
        "orders_in_database": len(rows),
        "orders_accepted_http": len(set(ids)),
        "events_distinct": sum(h.events for h in histories.values()),
        "events_redelivered": redelivered,
        **{f"status_{k}": n for k, n in sorted(statuses.items())},
    }
    return v
