"""Order contracts: a customer order with its options, and its lifecycle.

States follow ISA-95 / B2MML order handling: ``received`` -> ``accepted`` or ``rejected``
-> ``scheduled`` -> ``in_production`` -> ``completed`` -> ``shipped``; ``cancelled`` is
reachable until production starts. Key of every topic: ``order_id``. Money is integer minor
units with an ISO 4217 currency. ``at`` fields are RFC 3339 UTC timestamps.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StrictInt

from contracts.base import Contract
from contracts.masterdata import Currency, MinorUnits, OptionName, OptionValue
from contracts.types import EntityId


class OrderStatus(StrEnum):
    """ISA-95 order states as Millrace names them."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    SCHEDULED = "scheduled"
    IN_PRODUCTION = "in_production"
    COMPLETED = "completed"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    RUSH = "rush"


class OrderLine(Contract):
    """One line: ``quantity`` units of ``sku`` with every option resolved (defaults filled).

    ``operations`` is the routing's operation count at placement, so a consumer knows when
    the line is complete without a master-data lookup.
    """

    line_no: Annotated[StrictInt, Field(ge=1)]
    sku: EntityId
    quantity: Annotated[StrictInt, Field(ge=1)]
    options: dict[OptionName, OptionValue] = {}
    operations: Annotated[StrictInt, Field(ge=1)]
    unit_price_minor: MinorUnits = 0


class OrderPlaced(Contract):
    """``orders.order-placed.v1``: an order was accepted for production.

    ``total_minor`` is the sum of ``quantity * unit_price_minor`` over the lines.
    """

    order_id: EntityId
    customer: EntityId
    lines: Annotated[list[OrderLine], Field(min_length=1)]
    due_date: date
    priority: Priority
    status: OrderStatus
    total_minor: MinorUnits
    currency: Currency
    placed_at: datetime


class OrderCancelled(Contract):
    """``orders.order-cancelled.v1``: the order was cancelled before production started."""

    order_id: EntityId
    customer: EntityId
    reason: Annotated[str, Field(max_length=500)] = ""
    cancelled_at: datetime


class OrderStatusChanged(Contract):
    """``orders.order-status-changed.v1``: the order moved from ``previous`` to ``status``.

    ``cause`` names what moved it (``api``, or the topic of the consumed event).
    """

    order_id: EntityId
    customer: EntityId
    previous: OrderStatus
    status: OrderStatus
    cause: Annotated[str, Field(max_length=200)]
    at: datetime
