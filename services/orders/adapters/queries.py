"""Read side: an order with its timeline, paged lists, and the product and customer views.

Reads run outside the unit of work: they take no locks and see committed state.
"""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import orjson

from contracts.masterdata import Customer, Product
from services.orders.domain.order import Order


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The paging position in a cursor; ValueError when it was not made by this service."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not text.isdigit() or len(text) > 18:
        raise ValueError("invalid cursor")
    return int(text)


def _summary(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "customer": row["customer"],
        "status": row["status"],
        "due_date": row["due_date"].isoformat(),
        "priority": row["priority"],
        "currency": row["currency"],
        "total_minor": row["total_minor"],
        "lines": orjson.loads(row["lines"]),
        "placed_at": row["placed_at"],
        "updated_at": row["updated_at"],
    }


async def order_view(pool: asyncpg.Pool, order_id: str) -> dict[str, Any] | None:
    """The order with its timeline in the order things happened, or None."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM orders.orders WHERE order_id = $1", order_id)
        if row is None:
            return None
        entries = await conn.fetch(
            "SELECT at, kind, status, detail FROM orders.order_timeline"
            " WHERE order_id = $1 ORDER BY n",
            order_id,
        )
    view = _summary(row)
    view["timeline"] = [
        {"at": e["at"], "kind": e["kind"], "status": e["status"], **orjson.loads(e["detail"])}
        for e in entries
    ]
    return view


async def find_by_key(pool: asyncpg.Pool, principal: str, key: str) -> tuple[str, str] | None:
    """``(order_id, request_hash)`` of the order an idempotency key created, if any."""
    row = await pool.fetchrow(
        "SELECT order_id, request_hash FROM orders.orders"
        " WHERE principal = $1 AND idempotency_key = $2",
        principal,
        key,
    )
    return None if row is None else (row["order_id"], row["request_hash"])


def new_order_view(order: Order) -> dict[str, Any]:
    """The view of a just-placed order, built from the aggregate (saves reading it back)."""
    return {
        "order_id": order.order_id,
        "customer": order.customer,
        "status": order.status.value,
        "due_date": order.due_date.isoformat(),
        "priority": order.priority.value,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "lines": [line.model_dump(mode="json") for line in order.lines],
        "placed_at": order.placed_at,
        "updated_at": order.placed_at,
        "timeline": [
            {"at": e.at, "kind": e.kind, "status": e.status.value, **e.detail}
            for e in order.timeline
        ],
    }


async def list_orders(
    pool: asyncpg.Pool,
    *,
    customer: str | None,
    status: str | None,
    after: int,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of orders (oldest first) and the cursor of the next page, if any."""
    rows = await pool.fetch(
        "SELECT * FROM orders.orders WHERE seq > $1"
        " AND ($2::text IS NULL OR customer = $2) AND ($3::text IS NULL OR status = $3)"
        " ORDER BY seq LIMIT $4",
        after,
        customer,
        status,
        limit + 1,
    )
    page = rows[:limit]
    cursor = encode_cursor(page[-1]["seq"]) if len(rows) > limit else None
    return [_summary(r) for r in page], cursor


async def products(pool: asyncpg.Pool, skus: set[str]) -> dict[str, Product]:
    """The products named in a request, as the master-data view knows them."""
    rows = await pool.fetch(
        "SELECT data FROM orders.products WHERE sku = ANY($1::text[])", sorted(skus)
    )
    found = (Product.model_validate_json(r["data"]) for r in rows)
    return {p.sku: p for p in found}


async def customer(pool: asyncpg.Pool, customer_id: str) -> Customer | None:
    """The customer as the master-data view knows it, or None for an unknown customer."""
    data = await pool.fetchval(
        "SELECT data FROM orders.customers WHERE customer_id = $1", customer_id
    )
    return None if data is None else Customer.model_validate_json(data)
