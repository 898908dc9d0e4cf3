"""HTTP request and response models. Requests forbid unknown fields (a typo is a 422, not a
silently ignored option); responses are documented in the OpenAPI."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from contracts.masterdata import OptionName
from contracts.orders import OrderStatus, Priority
from contracts.types import EntityId
from shared.http_errors import error_responses

Text = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
OptionText = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
ORDER_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# A page cursor is unpadded base64url of 1-18 decimal digits. Spelled out in full (three digits
# make four characters, each allowing only the values a digit's bits can give) so that every
# cursor the schema allows is one the service accepts.
_THREE = r"(?:[MN][DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"
_ONE_OR_TWO = r"(?:[MN][AQgw]|O[AQ]|(?:[MN][DTjz]|O[DT])[AEIMQUYcgk])"
CURSOR = rf"^(?:{_THREE}){{0,5}}(?:{_THREE}|{_ONE_OR_TWO})$"


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


class ListQuery(_In):
    """The query of ``GET /v1/orders``; an unknown parameter is a 422, as an unknown field is."""

    customer: Annotated[str | None, Field(max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")] = None
    status: OrderStatus | None = None
    cursor: Annotated[str | None, Field(pattern=CURSOR, description="next_cursor of a page")] = None
    limit: Annotated[int, Field(ge=1, le=1_000)] = 50


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


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of error ``codes`` (:func:`shared.http_errors.error_responses`)."""
    return error_responses(
        *codes, **{"e404": "no such order, or not yours", "e503": DB_DOWN, **described}
    )


DB_DOWN = "database unavailable; retry after Retry-After seconds"
PLACE_RESPONSES = {
    200: {
        "model": OrderOut,
        "description": "the order this Idempotency-Key already created (a retry)",
        "headers": {"Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}},
    },
    **errors(
        400,
        401,
        403,
        409,
        413,
        422,
        503,
        e400="the body is not JSON, or Idempotency-Key is missing or malformed",
        e403="a customer token may only place its own customer's orders",
        e409="Idempotency-Key already used with a different body",
    ),
}
