"""Retention: sent outbox rows, inbox rows, and old plan versions.

An outbox row has done its work once sent (its ``ce_id`` derives from the plan or period, not
from the row): it is kept ``outbox_keep`` after that. An inbox row only has to outlive every
redelivery of its event: it is kept for its topic's retention in the manifest plus a day, and
never for a topic kept forever (master data needs no inbox). Plan history keeps the newest
``plans_keep`` versions; older versions and their assignments go. Rows go in batches, each
its own short transaction, oldest first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from contracts.manifest import topic as topic_spec
from services.scheduling import metrics as m
from shared.logging import get_logger

BATCH = 5_000
INBOX_MARGIN = timedelta(days=1)
log = get_logger(__name__)


@dataclass(frozen=True)
class Retention:
    outbox_keep: timedelta
    inbox_keep: dict[str, timedelta]  # topic -> how long its rows are kept
    plans_keep: int


def retention(outbox_keep_ms: int, consumed: Iterable[str], plans_keep: int) -> Retention:
    inbox = {}
    for name in consumed:
        kept_ms = topic_spec(name).retention_ms
        if kept_ms is not None:
            inbox[name] = timedelta(milliseconds=kept_ms) + INBOX_MARGIN
    return Retention(timedelta(milliseconds=outbox_keep_ms), inbox, plans_keep)


async def prune(pool: asyncpg.Pool, policy: Retention, plan_id: str) -> dict[str, int]:
    """Delete what ``policy`` no longer keeps; rows deleted per table."""
    now: datetime = await pool.fetchval("SELECT now()")  # the rows were stamped by it
    deleted = {
        "outbox": await _in_batches(
            pool,
            "DELETE FROM scheduling.outbox WHERE id IN (SELECT id FROM scheduling.outbox"
            " WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)",
            now - policy.outbox_keep,
        ),
        "inbox": 0,
    }
    for name, keep in policy.inbox_keep.items():
        deleted["inbox"] += await _in_batches(
            pool,
            "DELETE FROM scheduling.inbox WHERE event_key IN (SELECT event_key FROM"
            " scheduling.inbox WHERE topic = $3 AND received_at < $1 ORDER BY received_at"
            " LIMIT $2)",
            now - keep,
            name,
        )
    latest = await pool.fetchval(
        "SELECT max(version) FROM scheduling.plans WHERE plan_id = $1", plan_id
    )
    oldest_kept = int(latest or 0) - policy.plans_keep + 1
    deleted["plan_assignments"] = await _in_batches(
        pool,
        "DELETE FROM scheduling.plan_assignments WHERE (plan_id, version, work_order_id, seq)"
        " IN (SELECT plan_id, version, work_order_id, seq FROM scheduling.plan_assignments"
        " WHERE plan_id = $3 AND version < $1 LIMIT $2)",
        oldest_kept,
        plan_id,
    )
    status = await pool.execute(
        "DELETE FROM scheduling.plans WHERE plan_id = $1 AND version < $2", plan_id, oldest_kept
    )
    deleted["plans"] = int(status.split()[-1])
    for table, n in deleted.items():
        m.PRUNED.labels(table).inc(n)
    return deleted


async def _in_batches(pool: asyncpg.Pool, sql: str, cutoff: object, *args: object) -> int:
    total = 0
    while True:
        status = await pool.execute(sql, cutoff, BATCH, *args)
        deleted = int(status.split()[-1])  # "DELETE n"
        total += deleted
        if deleted < BATCH:
            return total


async def prune_loop(
    pool: asyncpg.Pool, policy: Retention, plan_id: str, interval_s: float, stop: asyncio.Event
) -> None:
    """Prune now and then every ``interval_s`` until ``stop``."""
    while not stop.is_set():
        deleted = await prune(pool, policy, plan_id)
        if any(deleted.values()):
            log.info("bookkeeping pruned", **deleted)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
