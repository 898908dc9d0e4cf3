"""HTTP request and response models. Requests forbid unknown fields (a typo is a 422, not a
silently ignored option); responses are documented in the OpenAPI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from contracts.masterdata import OptionName
from contracts.orders import OrderStatus, Priority
from contracts.types import EntityId

Text = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
OptionText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
ORDER_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LineIn(_In):
    sku: EntityId
    quantity: Annotated[StrictInt, Field(ge=1, le=1_000_000)]
    options: Annotated[dict[OptionName, OptionText], Field(max_length=50)] = {}


class OrderIn(_In):
    """A customer order. ``customer`` may be left out with a customer token (it is the
    token's customer); a plant token must name it."""

    customer: EntityId | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=1_000)]
    due_date: date
    priority: Priority = Priority.NORMAL


class CancelIn(_In):
    reason: Text = ""


class TimelineOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    at: datetime
    kind: str
    status: OrderStatus


class OrderOut(BaseModel):
    order_id: str
    customer: str
    status: OrderStatus
    due_date: date
    priority: Priority
    currency: str
    total_minor: int
    lines: list[dict[str, Any]]
    placed_at: datetime
    updated_at: datetime
    timeline: list[TimelineOut] = []


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_cursor: str | None
