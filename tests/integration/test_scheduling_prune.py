"""Retention on real PostgreSQL: old plan versions, sent outbox rows and expired inbox rows go;
the newest versions, unsent rows and recent inbox rows stay."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from support.scheduling import fresh_database

from services.scheduling.adapters.postgres import SCHEMA
from services.scheduling.adapters.prune import prune, retention
from shared.migrations import migrate_pool

PLACED = "orders.order-placed.v1"


async def test_retention_keeps_the_newest_versions_and_what_may_still_be_needed(
    database_url: str,
) -> None:
    pool = await asyncpg.create_pool(await fresh_database(database_url), min_size=1, max_size=2)
    try:
        await migrate_pool(pool, SCHEMA, "services.scheduling.migrations")
        async with pool.acquire() as conn:
            for version in range(1, 6):
                await conn.execute(
                    "INSERT INTO scheduling.plans (plan_id, version, planned_at, triggers, status,"
                    " tardiness, makespan, moved, planned, changed, late, unplanned, horizon_end,"
                    " solve_seconds) VALUES ('p', $1, 0, '{manual}', 'greedy', 0, 0, 0, 2, 0, 0,"
                    " '[]', 0, 0)",
                    version,
                )
                await conn.executemany(
                    "INSERT INTO scheduling.plan_assignments VALUES ('p', $1, $2, 10, 'm', 0, 1,"
                    " false)",
                    [(version, "wo/1"), (version, "wo/2")],
                )
            await conn.executemany(
                "INSERT INTO scheduling.outbox (topic, msg_key, ce_id, headers, payload, sent_at)"
                " VALUES ('t', 'k', $1, '[]', '', $2::timestamptz)",
                [
                    ("old-sent", datetime(2000, 1, 1, tzinfo=UTC)),
                    ("new-sent", datetime(2999, 1, 1, tzinfo=UTC)),
                    ("unsent", None),
                ],
            )
            await conn.executemany(
                "INSERT INTO scheduling.inbox (event_key, topic, received_at) VALUES ($1, $2, $3)",
                [
                    ("old", PLACED, await conn.fetchval("SELECT now() - interval '400 days'")),
                    ("new", PLACED, await conn.fetchval("SELECT now()")),
                ],
            )
        deleted = await prune(pool, retention(3_600_000, [PLACED], plans_keep=2), "p")
        assert deleted == {"outbox": 1, "inbox": 1, "plan_assignments": 6, "plans": 3}
        versions = await pool.fetch(
            "SELECT version, (SELECT count(*) FROM scheduling.plan_assignments a"
            " WHERE a.version = p.version) AS n FROM scheduling.plans p ORDER BY version"
        )
        assert [(r["version"], r["n"]) for r in versions] == [(4, 2), (5, 2)]
        outbox = await pool.fetch("SELECT ce_id FROM scheduling.outbox ORDER BY ce_id")
        assert [r["ce_id"] for r in outbox] == ["new-sent", "unsent"]
        assert await pool.fetchval("SELECT array_agg(event_key) FROM scheduling.inbox") == ["new"]
    finally:
        await pool.close()
