"""The outbox relay: publish unsent outbox rows in id order, then mark them sent.

The same mechanism as the orders service's relay (services do not import each other; a shared
relay would belong in ``shared/``). Why no ``id > last_published`` cursor: ids come from a
sequence and transactions commit out of id order, so a row with a smaller id can become visible
after a larger one was read; a high-water mark would skip it forever. Every round reads
``WHERE sent_at IS NULL ORDER BY id``. Order per key holds because plan versions commit one at
a time (the planner's advisory lock), each with its rows in event order.

One relay publishes at a time (a transaction-scoped advisory lock); a crash after the Kafka
ack but before the mark republishes the same rows with the same ``ce_id`` (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from services.scheduling import metrics as m
from services.scheduling.adapters.postgres import OUTBOX_CHANNEL as CHANNEL
from shared.logging import get_logger

LOCK_KEY = "millrace.scheduling.outbox-relay"
log = get_logger(__name__)
Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class OutboxRelay:
    """Drains the outbox to Kafka; woken by ``NOTIFY`` and by a polling fallback."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        batch: int = 500,
        poll_s: float = 1.0,
        after_publish: Hook = _nothing,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._batch = batch
        self._poll_s = poll_s
        self._after_publish = after_publish
        self._wake = asyncio.Event()

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def drain_once(self) -> int:
        """Publish one batch in id order and mark it sent; return how many rows."""
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", LOCK_KEY
            )
            if not locked:
                return 0
            rows = await conn.fetch(
                "SELECT id, topic, msg_key, headers, payload, created_at FROM scheduling.outbox"
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                self._batch,
            )
            if not rows:
                m.OUTBOX_BACKLOG.set(0)
                return 0
            pending = []
            for row in rows:
                headers = [(k, v.encode()) for k, v in orjson.loads(row["headers"])]
                pending.append(
                    await self._producer.send(
                        row["topic"], row["payload"], key=row["msg_key"].encode(), headers=headers
                    )
                )
            for future in pending:
                await future
            await self._after_publish()
            await conn.execute(
                "UPDATE scheduling.outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
            m.RELAY_PUBLISHED.inc(len(rows))
            return len(rows)

    async def backlog(self) -> int:
        count = await self._pool.fetchval(
            "SELECT count(*) FROM scheduling.outbox WHERE sent_at IS NULL"
        )
        return int(count)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop``; sleep on LISTEN/NOTIFY or ``poll_s``, whichever comes first."""
        listener = await self._pool.acquire()
        try:
            await listener.add_listener(CHANNEL, self.wake)
            while not stop.is_set():
                self._wake.clear()
                sent = await self.drain_once()
                if sent >= self._batch:
                    continue
                m.OUTBOX_BACKLOG.set(await self.backlog())
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=self._poll_s, return_when="FIRST_COMPLETED"
                )
                for task in (waiter, stopper):
                    task.cancel()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(CHANNEL, self.wake)
            await self._pool.release(listener)
