"""Mapping between the order aggregate and its ``orders`` row, and events to outbox rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from contracts.base import Contract
from contracts.envelope import derived_id, new_event
from contracts.orders import (
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    Priority,
)
from services.orders.domain.order import FACTS, Order

SERVICE = "orders"
TOPIC_OF: dict[type[Contract], str] = {
    OrderPlaced: "orders.order-placed.v1",
    OrderCancelled: "orders.order-cancelled.v1",
    OrderStatusChanged: "orders.order-status-changed.v1",
}


def order_from_row(row: Mapping[str, Any]) -> Order:
    """Rebuild the aggregate; its ``timeline`` and ``events`` start empty (they hold news)."""
    facts = orjson.loads(row["facts"])
    return Order(
        order_id=row["order_id"],
        customer=row["customer"],
        lines=tuple(OrderLine.model_validate(x) for x in orjson.loads(row["lines"])),
        due_date=row["due_date"],
        priority=Priority(row["priority"]),
        currency=row["currency"],
        placed_at=row["placed_at"],
        status=OrderStatus(row["status"]),
        facts={f: {(int(a), int(b)) for a, b in facts.get(f, [])} for f in FACTS},
    )


def lines_json(order: Order) -> str:
    return orjson.dumps([line.model_dump(mode="json") for line in order.lines]).decode()


def facts_json(order: Order) -> str:
    return orjson.dumps({f: sorted(order.facts[f]) for f in FACTS}).decode()


def event_time(event: Contract) -> datetime:
    if isinstance(event, OrderPlaced):
        return event.placed_at
    if isinstance(event, OrderCancelled):
        return event.cancelled_at
    assert isinstance(event, OrderStatusChanged)
    return event.at


def outbox_row(order_id: str, n: int, event: Contract) -> tuple[str, str, str, str, bytes]:
    """``(topic, key, ce_id, headers_json, payload)``; ``ce_id`` is derived from the order id
    and the event's position in the order's history, so a republished row keeps its id."""
    topic = TOPIC_OF[type(event)]
    envelope = new_event(
        topic=topic,
        service=SERVICE,
        subject=order_id,
        event_id=derived_id(SERVICE, order_id, n),
        time=event_time(event),
    )
    headers = [[k, v.decode()] for k, v in envelope.headers()]
    payload = orjson.dumps(event.model_dump(mode="json"))
    return topic, order_id, envelope.id, orjson.dumps(headers).decode(), payload
