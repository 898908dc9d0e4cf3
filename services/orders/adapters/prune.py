"""Retention of the service's bookkeeping: sent outbox rows and inbox rows.

Neither table is needed forever. An outbox row has done its work once it is sent (an event's
``ce_id`` derives from the order, not from the row); it is kept ``orders_outbox_keep_ms`` after
that, for inspection. An inbox row only has to outlive every redelivery of its event, and an
event cannot come back once its topic no longer holds it: each topic's rows are kept for that
topic's retention in the manifest plus a margin, and the rows of a topic kept forever are never
pruned. Rows go in batches, each its own short transaction, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from contracts.manifest import topic as topic_spec
from services.orders import metrics as m
from shared.logging import get_logger

BATCH = 5_000
# Redeliveries come from the topic: a consumer can be handed an event for as long as the topic
# keeps it, and a little longer while it is being read.
INBOX_MARGIN = timedelta(days=1)
log = get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    outbox_keep: timedelta
    inbox_keep: dict[str, timedelta | None]  # topic -> how long its rows are kept (None: always)


def retention(outbox_keep_ms: int, consumed: Iterable[str]) -> Retention:
    """The retention for sent outbox rows and for the inbox rows of the ``consumed`` topics."""
    inbox: dict[str, timedelta | None] = {}
    for name in consumed:
        kept_ms = topic_spec(name).retention_ms
        inbox[name] = None if kept_ms is None else timedelta(milliseconds=kept_ms) + INBOX_MARGIN
    return Retention(timedelta(milliseconds=outbox_keep_ms), inbox)


async def prune(pool: asyncpg.Pool, policy: Retention, now: datetime) -> tuple[int, int]:
    """Delete what ``policy`` no longer keeps at ``now``; the outbox and inbox rows deleted."""
    outbox = await _in_batches(
        pool,
        "DELETE FROM orders.outbox WHERE id IN (SELECT id FROM orders.outbox"
        " WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)",
        now - policy.outbox_keep,
    )
    inbox = 0
    for name, keep in policy.inbox_keep.items():
        if keep is None:
            continue
        inbox += await _in_batches(
            pool,
            "DELETE FROM orders.inbox WHERE event_key IN (SELECT event_key FROM orders.inbox"
            " WHERE topic = $3 AND received_at < $1 ORDER BY received_at LIMIT $2)",
            now - keep,
            name,
        )
    m.PRUNED.labels("outbox").inc(outbox)
    m.PRUNED.labels("inbox").inc(inbox)
    return outbox, inbox


async def _in_batches(pool: asyncpg.Pool, sql: str, cutoff: datetime, *args: object) -> int:
    total = 0
    while True:
        status = await pool.execute(sql, cutoff, BATCH, *args)
        deleted = int(status.split()[-1])  # "DELETE n"
        total += deleted
        if deleted < BATCH:
            return total


async def prune_loop(
    pool: asyncpg.Pool, policy: Retention, interval_s: float, stop: asyncio.Event
) -> None:
    """Prune now and then every ``interval_s`` until ``stop``."""
    while not stop.is_set():
        outbox, inbox = await prune(pool, policy, await _db_now(pool))
        if outbox or inbox:
            log.info("bookkeeping pruned", outbox_rows=outbox, inbox_rows=inbox)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _db_now(pool: asyncpg.Pool) -> datetime:
    """The database's clock: the rows were stamped by it (``now()`` defaults)."""
    now: datetime = await pool.fetchval("SELECT now()")
    return now
