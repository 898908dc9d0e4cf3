"""Retention of the orders bookkeeping on real PostgreSQL: sent outbox rows after their keep
time, inbox rows after their topic's retention, never an unsent row or a row still needed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support.orders import fresh_database

from contracts.manifest import topic as topic_spec
from services.orders.adapters import prune as prune_mod
from services.orders.adapters.postgres import SCHEMA
from services.orders.adapters.prune import INBOX_MARGIN, Retention, prune, prune_loop, retention
from services.orders.handlers import LIFECYCLE
from shared.migrations import migrate_pool

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(await fresh_database(database_url), min_size=1, max_size=4)
    await migrate_pool(p, SCHEMA, "services.orders.migrations")
    try:
        yield p
    finally:
        await p.close()


async def add_outbox(pool: asyncpg.Pool, ce_id: str, sent_at: datetime | None) -> None:
    await pool.execute(
        "INSERT INTO orders.outbox (topic, msg_key, ce_id, headers, payload, created_at, sent_at)"
        " VALUES ('orders.order-placed.v1', 'o-1', $1, '[]', '\\x7b7d', $2, $3)",
        ce_id,
        (sent_at or NOW) - timedelta(seconds=1),
        sent_at,
    )


async def add_inbox(pool: asyncpg.Pool, key: str, topic: str, received_at: datetime) -> None:
    await pool.execute(
        "INSERT INTO orders.inbox (event_key, topic, received_at) VALUES ($1, $2, $3)",
        key,
        topic,
        received_at,
    )


async def remaining(pool: asyncpg.Pool, table: str, column: str) -> set[str]:
    rows = await pool.fetch(f"SELECT {column} FROM orders.{table}")
    return {r[column] for r in rows}


def test_inbox_rows_outlive_their_topic_and_a_kept_forever_topic_is_never_pruned() -> None:
    policy = retention(1000, [*LIFECYCLE, "masterdata.products.v1"])
    assert policy.outbox_keep == timedelta(seconds=1)
    for name in LIFECYCLE:
        kept_ms = topic_spec(name).retention_ms
        assert kept_ms is not None
        assert policy.inbox_keep[name] == timedelta(milliseconds=kept_ms) + INBOX_MARGIN
    assert topic_spec("masterdata.products.v1").retention_ms is None
    assert policy.inbox_keep["masterdata.products.v1"] is None


async def test_prune_keeps_unsent_recent_and_still_redeliverable_rows(
    pool: asyncpg.Pool,
) -> None:
    await add_outbox(pool, "sent-long-ago", NOW - 8 * DAY)
    await add_outbox(pool, "sent-recently", NOW - 6 * DAY)
    await add_outbox(pool, "never-sent", None)
    short, long_, forever = "short.v1", "long.v1", "forever.v1"
    await add_inbox(pool, "short-old", short, NOW - 3 * DAY)
    await add_inbox(pool, "short-new", short, NOW - DAY)
    await add_inbox(pool, "long-old", long_, NOW - 3 * DAY)
    await add_inbox(pool, "forever-old", forever, NOW - 3000 * DAY)
    await add_inbox(pool, "unlisted-old", "other.v1", NOW - 3000 * DAY)
    policy = Retention(7 * DAY, {short: 2 * DAY, long_: 30 * DAY, forever: None})

    assert await prune(pool, policy, NOW) == (1, 1)

    assert await remaining(pool, "outbox", "ce_id") == {"sent-recently", "never-sent"}
    assert await remaining(pool, "inbox", "event_key") == {
        "short-new",
        "long-old",
        "forever-old",
        "unlisted-old",
    }
    assert await prune(pool, policy, NOW) == (0, 0)


async def test_prune_goes_through_more_rows_than_a_batch(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune_mod, "BATCH", 7)
    for i in range(30):
        await add_outbox(pool, f"old-{i}", NOW - 10 * DAY + timedelta(minutes=i))
        await add_inbox(pool, f"in-{i}", "t.v1", NOW - 10 * DAY)
    await add_outbox(pool, "new", NOW)
    policy = Retention(7 * DAY, {"t.v1": DAY})
    assert await prune(pool, policy, NOW) == (30, 30)
    assert await remaining(pool, "outbox", "ce_id") == {"new"}
    assert await remaining(pool, "inbox", "event_key") == set()


async def test_the_loop_prunes_by_the_database_clock_until_stopped(pool: asyncpg.Pool) -> None:
    db_now: datetime = await pool.fetchval("SELECT now()")
    await add_outbox(pool, "expired", db_now - 2 * DAY)
    await add_outbox(pool, "kept", db_now)
    stop = asyncio.Event()
    task = asyncio.create_task(prune_loop(pool, Retention(DAY, {}), 0.05, stop))
    for _ in range(100):
        if await remaining(pool, "outbox", "ce_id") == {"kept"}:
            break
        await asyncio.sleep(0.05)
    assert await remaining(pool, "outbox", "ce_id") == {"kept"}
    stop.set()
    await asyncio.wait_for(task, 5)
