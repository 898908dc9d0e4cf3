"""The unit of work: one PostgreSQL transaction for state, inbox and outbox.

An order is read ``FOR UPDATE``, so every change to one order (API or consumer) is serialised;
its outbox rows therefore get ids in commit order, which is what lets the relay publish them
in order per order id. ``NOTIFY`` inside the transaction wakes the relay at commit.
"""

from __future__ import annotations

import types
from typing import Any

import asyncpg
import orjson

from contracts.masterdata import Customer, Product
from services.orders.adapters.rows import facts_json, lines_json, order_from_row, outbox_row
from services.orders.domain.order import Order

SCHEMA = "orders"
CHANNEL = "orders_outbox"


# The rest of a write, after a CTE ``o`` that returns the order id of the changed order: its
# timeline rows, its outbox rows in event order, and a NOTIFY that the relay receives at commit.
# One statement is one round trip and, on its own, one implicit transaction.
NEWS = (
    ", t AS (INSERT INTO orders.order_timeline (order_id, at, kind, status, detail)"
    " SELECT o.order_id, x.at, x.kind, x.status, x.detail FROM o,"
    " unnest($1::timestamptz[], $2::text[], $3::text[], $4::jsonb[])"
    " AS x(at, kind, status, detail))"
    ", b AS (INSERT INTO orders.outbox (topic, msg_key, ce_id, headers, payload)"
    " SELECT x.topic, o.order_id, x.ce_id, x.headers, x.payload FROM o,"
    " unnest($5::text[], $6::text[], $7::jsonb[], $8::bytea[])"
    " WITH ORDINALITY AS x(topic, ce_id, headers, payload, n) ORDER BY x.n RETURNING 1)"
    " SELECT o.order_id, (SELECT pg_notify('orders_outbox', '') WHERE EXISTS (SELECT 1 FROM b))"
    " FROM o"
)


def news_params(order: Order, first_n: int) -> list[list[Any]]:
    """The eight arrays ``NEWS`` takes: timeline columns, then outbox columns."""
    timeline = order.timeline
    outbox = [outbox_row(order.order_id, first_n + i, e) for i, e in enumerate(order.events)]
    return [
        [e.at for e in timeline],
        [e.kind for e in timeline],
        [e.status.value for e in timeline],
        [orjson.dumps(e.detail).decode() for e in timeline],
        [row[0] for row in outbox],
        [row[2] for row in outbox],
        [row[3] for row in outbox],
        [row[4] for row in outbox],
    ]


async def insert_order(
    conn: Any, order: Order, principal: str, idem_key: str, request_hash: str
) -> bool:
    """Insert a just-placed order with its timeline and outbox rows in one statement (one
    round trip, atomic on its own); False when ``(principal, idem_key)`` already names one."""
    inserted = await conn.fetchval(
        "WITH o AS (INSERT INTO orders.orders (order_id, principal, idempotency_key,"  # noqa: S608
        " request_hash, customer, status, due_date, priority, currency, total_minor, lines,"
        " facts, placed_at, updated_at, event_seq) VALUES ($9, $10, $11, $12, $13, $14, $15,"
        " $16, $17, $18, $19::jsonb, $20::jsonb, $21, $21, cardinality($5::text[]))"
        f" ON CONFLICT (principal, idempotency_key) DO NOTHING RETURNING order_id) {NEWS}",
        *news_params(order, 0),
        order.order_id,
        principal,
        idem_key,
        request_hash,
        order.customer,
        order.status.value,
        order.due_date,
        order.priority.value,
        order.currency,
        order.total_minor,
        lines_json(order),
        facts_json(order),
        order.placed_at,
    )
    if inserted is None:
        return False
    order.timeline.clear()
    order.events.clear()
    return True


class PoolRef:
    """The service's pool, opened by the app's lifespan on the server's own event loop (a
    pool created earlier would be bound to another loop)."""

    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool not open yet")
        return self._pool

    def set(self, pool: asyncpg.Pool | None) -> None:
        self._pool = pool


class UnitOfWork:
    """``async with UnitOfWork(pool) as uow: ...; await uow.commit()``; rollback otherwise."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._tx: Any = None
        self._done = False
        self._event_seq: dict[str, int] = {}

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._pool.acquire()
        self._tx = self._conn.transaction()
        await self._tx.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        try:
            if not self._done:
                await self._tx.rollback()
        finally:
            await self._pool.release(self._conn)

    async def commit(self) -> None:
        await self._tx.commit()
        self._done = True

    async def get(self, order_id: str, *, lock: bool = True) -> Order | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await self._conn.fetchrow(
            f"SELECT * FROM orders.orders WHERE order_id = $1{suffix}",  # noqa: S608
            order_id,
        )
        if row is None:
            return None
        self._event_seq[order_id] = int(row["event_seq"])
        return order_from_row(row)

    async def add(self, order: Order, principal: str, idem_key: str, request_hash: str) -> bool:
        """Insert a new order; False when ``(principal, idem_key)`` already names one."""
        return await insert_order(self._conn, order, principal, idem_key, request_hash)

    async def save(self, order: Order) -> None:
        """Persist a loaded order's new status, facts, timeline entries and events in one
        statement (the order was read ``FOR UPDATE``, so its ``event_seq`` is current)."""
        first_n = self._event_seq[order.order_id]
        await self._conn.execute(
            "WITH o AS (UPDATE orders.orders SET status = $10, facts = $11::jsonb,"  # noqa: S608
            " updated_at = now(), event_seq = event_seq + cardinality($5::text[])"
            f" WHERE order_id = $9 RETURNING order_id) {NEWS}",
            *news_params(order, first_n),
            order.order_id,
            order.status.value,
            facts_json(order),
        )
        self._event_seq[order.order_id] = first_n + len(order.events)
        order.timeline.clear()
        order.events.clear()

    async def first_delivery(self, event_key: str, topic: str) -> bool:
        """Record a consumed event in the inbox; False when it was already applied."""
        inserted = await self._conn.fetchval(
            "INSERT INTO orders.inbox (event_key, topic) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            event_key,
            topic,
        )
        return bool(inserted)

    async def put_product(self, product: Product) -> None:
        await self._conn.execute(
            "INSERT INTO orders.products (sku, data) VALUES ($1, $2::jsonb) ON CONFLICT (sku)"
            " DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
            product.sku,
            product.model_dump_json(),
        )

    async def drop_product(self, sku: str) -> None:
        await self._conn.execute("DELETE FROM orders.products WHERE sku = $1", sku)

    async def put_customer(self, customer: Customer) -> None:
        await self._conn.execute(
            "INSERT INTO orders.customers (customer_id, data) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (customer_id) DO UPDATE SET data = EXCLUDED.data, updated_at = now()",
            customer.customer_id,
            customer.model_dump_json(),
        )

    async def drop_customer(self, customer_id: str) -> None:
        await self._conn.execute("DELETE FROM orders.customers WHERE customer_id = $1", customer_id)
