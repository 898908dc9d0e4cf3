"""The unit of work: one PostgreSQL transaction for a consumed event's state change, its inbox
row and the re-plan trigger it causes (``NOTIFY`` wakes the planner at commit)."""

from __future__ import annotations

import types
from typing import Any

import asyncpg
import orjson

from contracts.masterdata import Machine, Product
from contracts.orders import OrderPlaced
from services.scheduling.domain.state import Condition

SCHEMA = "scheduling"
OUTBOX_CHANNEL = "scheduling_outbox"
REPLAN_CHANNEL = "scheduling_replan"


class PoolRef:
    """The service's pool, opened by the app's lifespan on the server's own event loop."""

    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database pool not open yet")
        return self._pool

    def set(self, pool: asyncpg.Pool | None) -> None:
        self._pool = pool


async def add_trigger(conn: Any, kind: str, detail: str = "") -> int:
    """Record a pending re-plan trigger; the planner is woken when the transaction commits."""
    trigger_id = await conn.fetchval(
        "INSERT INTO scheduling.triggers (kind, detail) VALUES ($1, $2) RETURNING id",
        kind,
        detail[:500],
    )
    await conn.execute("SELECT pg_notify($1, '')", REPLAN_CHANNEL)
    return int(trigger_id)


class UnitOfWork:
    """``async with UnitOfWork(pool) as uow: ...; await uow.commit()``; rollback otherwise."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.conn: Any = None
        self._tx: Any = None
        self._done = False

    async def __aenter__(self) -> UnitOfWork:
        self.conn = await self._pool.acquire()
        self._tx = self.conn.transaction()
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
            await self._pool.release(self.conn)

    async def commit(self) -> None:
        await self._tx.commit()
        self._done = True

    async def first_delivery(self, event_key: str, topic: str) -> bool:
        """Record a consumed event in the inbox; False when it was already applied."""
        inserted = await self.conn.fetchval(
            "INSERT INTO scheduling.inbox (event_key, topic) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING RETURNING true",
            event_key,
            topic,
        )
        return bool(inserted)

    async def trigger(self, kind: str, detail: str = "") -> None:
        await add_trigger(self.conn, kind, detail)

    async def put_machine(self, machine: Machine) -> bool:
        """Upsert a machine; True when what planning uses of it changed."""
        changed = await self.conn.fetchval(
            "INSERT INTO scheduling.machines AS m (machine_id, work_center, capabilities)"
            " VALUES ($1, $2, $3) ON CONFLICT (machine_id) DO UPDATE"
            " SET work_center = EXCLUDED.work_center, capabilities = EXCLUDED.capabilities,"
            " updated_at = now() WHERE (m.work_center, m.capabilities)"
            " IS DISTINCT FROM (EXCLUDED.work_center, EXCLUDED.capabilities) RETURNING true",
            machine.machine_id,
            machine.work_center,
            sorted(machine.capabilities),
        )
        return bool(changed)

    async def drop_machine(self, machine_id: str) -> bool:
        status = await self.conn.execute(
            "DELETE FROM scheduling.machines WHERE machine_id = $1", machine_id
        )
        return bool(status != "DELETE 0")

    async def put_product(self, product: Product) -> bool:
        routing = orjson.dumps(
            [
                op.model_dump(include={"seq", "name", "capability", "setup_s", "run_s_per_unit"})
                for op in product.routing
            ]
        ).decode()
        changed = await self.conn.fetchval(
            "INSERT INTO scheduling.products AS p (sku, routing) VALUES ($1, $2::jsonb)"
            " ON CONFLICT (sku) DO UPDATE SET routing = EXCLUDED.routing, updated_at = now()"
            " WHERE p.routing IS DISTINCT FROM EXCLUDED.routing RETURNING true",
            product.sku,
            routing,
        )
        return bool(changed)

    async def drop_product(self, sku: str) -> bool:
        status = await self.conn.execute("DELETE FROM scheduling.products WHERE sku = $1", sku)
        return bool(status != "DELETE 0")

    async def place_order(self, order: OrderPlaced, due: int) -> bool:
        """Store a placed order; False when it was already cancelled (then it stays out)."""
        lines = orjson.dumps(
            [{"line_no": ln.line_no, "sku": ln.sku, "quantity": ln.quantity} for ln in order.lines]
        ).decode()
        cancelled = await self.conn.fetchval(
            "INSERT INTO scheduling.orders AS o (order_id, customer, due, priority, lines, placed)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, true) ON CONFLICT (order_id) DO UPDATE"
            " SET customer = EXCLUDED.customer, due = EXCLUDED.due,"
            " priority = EXCLUDED.priority, lines = EXCLUDED.lines, placed = true"
            " RETURNING o.cancelled",
            order.order_id,
            order.customer,
            due,
            order.priority.value,
            lines,
        )
        return not cancelled

    async def cancel_order(self, order_id: str) -> bool:
        """Mark an order cancelled; True when it was placed and open until now."""
        was_open = await self.conn.fetchval(
            "INSERT INTO scheduling.orders AS o (order_id, cancelled) VALUES ($1, true)"
            " ON CONFLICT (order_id) DO UPDATE SET cancelled = true"
            " RETURNING (SELECT placed AND NOT cancelled FROM scheduling.orders"
            " WHERE order_id = $1)",
            order_id,
        )
        return bool(was_open)

    async def condition(self, machine_id: str) -> Condition | None:
        row = await self.conn.fetchrow(
            "SELECT state, since FROM scheduling.machine_states WHERE machine_id = $1 FOR UPDATE",
            machine_id,
        )
        return None if row is None else Condition(row["state"], int(row["since"]))

    async def set_condition(self, machine_id: str, condition: Condition) -> None:
        await self.conn.execute(
            "INSERT INTO scheduling.machine_states (machine_id, state, since) VALUES ($1, $2, $3)"
            " ON CONFLICT (machine_id) DO UPDATE SET state = EXCLUDED.state,"
            " since = EXCLUDED.since",
            machine_id,
            condition.state,
            condition.since,
        )

    async def record_progress(
        self,
        work_order_id: str,
        seq: int,
        machine_id: str,
        *,
        started: int | None = None,
        completed: int | None = None,
        quantities: tuple[int, int] | None = None,
    ) -> None:
        """Merge a shop-floor report into the operation's progress (either may come first);
        ``quantities`` are the completion's good and scrap units."""
        good, scrap = quantities if quantities is not None else (None, None)
        await self.conn.execute(
            "INSERT INTO scheduling.progress AS p (work_order_id, seq, machine_id, started,"
            " completed, good, scrap) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (work_order_id, seq) DO UPDATE SET machine_id = EXCLUDED.machine_id,"
            " started = coalesce(EXCLUDED.started, p.started),"
            " completed = coalesce(EXCLUDED.completed, p.completed),"
            " good = coalesce(EXCLUDED.good, p.good), scrap = coalesce(EXCLUDED.scrap, p.scrap)",
            work_order_id,
            seq,
            machine_id,
            started,
            completed,
            good,
            scrap,
        )

    async def log_state(self, machine_id: str, condition: Condition) -> None:
        """Keep every state change (OEE needs the history; planning needs only the latest)."""
        await self.conn.execute(
            "INSERT INTO scheduling.state_log (machine_id, since, state) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            machine_id,
            condition.since,
            condition.state,
        )

    async def planned_end(self, work_order_id: str, seq: int) -> int | None:
        """The operation's end in the latest plan that has it."""
        end = await self.conn.fetchval(
            "SELECT end_s FROM scheduling.plan_assignments WHERE work_order_id = $1 AND seq = $2"
            " ORDER BY version DESC LIMIT 1",
            work_order_id,
            seq,
        )
        return None if end is None else int(end)
