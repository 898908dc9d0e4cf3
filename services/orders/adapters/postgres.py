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

from contracts.masterdata import Product
from services.orders.adapters.rows import facts_json, lines_json, order_from_row, outbox_row
from services.orders.domain.order import Order

SCHEMA = "orders"
CHANNEL = "orders_outbox"


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
        return None if row is None else order_from_row(row)

    async def add(self, order: Order, principal: str, idem_key: str, request_hash: str) -> bool:
        """Insert a new order; False when ``(principal, idem_key)`` already names one."""
        inserted = await self._conn.fetchval(
            "INSERT INTO orders.orders (order_id, principal, idempotency_key, request_hash,"
            " customer, status, due_date, priority, currency, total_minor, lines, facts, placed_at,"
            " updated_at, event_seq)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb,$12::jsonb,$13,$13,$14)"
            " ON CONFLICT (principal, idempotency_key) DO NOTHING RETURNING order_id",
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
            len(order.events),
        )
        if inserted is None:
            return False
        await self._write_news(order, 0)
        return True

    async def save(self, order: Order) -> None:
        """Persist a loaded order's new status, facts, timeline entries and events."""
        start = await self._conn.fetchval(
            "UPDATE orders.orders SET status = $2, facts = $3::jsonb, updated_at = now(),"
            " event_seq = event_seq + $4 WHERE order_id = $1 RETURNING event_seq - $4",
            order.order_id,
            order.status.value,
            facts_json(order),
            len(order.events),
        )
        await self._write_news(order, int(start))

    async def _write_news(self, order: Order, first_n: int) -> None:
        if order.timeline:
            await self._conn.executemany(
                "INSERT INTO orders.order_timeline (order_id, at, kind, status, detail)"
                " VALUES ($1, $2, $3, $4, $5::jsonb)",
                [
                    (order.order_id, e.at, e.kind, e.status.value, orjson.dumps(e.detail).decode())
                    for e in order.timeline
                ],
            )
        if order.events:
            rows = [outbox_row(order.order_id, first_n + i, e) for i, e in enumerate(order.events)]
            await self._conn.executemany(
                "INSERT INTO orders.outbox (topic, msg_key, ce_id, headers, payload)"
                " VALUES ($1, $2, $3, $4::jsonb, $5)",
                rows,
            )
            await self._conn.execute(f"NOTIFY {CHANNEL}")
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
