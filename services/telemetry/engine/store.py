"""Engine snapshots in PostgreSQL (schema ``telemetry``), one row per consumed partition."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

SCHEMA = "telemetry"
MIGRATIONS = "services.telemetry.migrations"

_UPSERT = """
INSERT INTO telemetry.engine_snapshots (consumer_group, topic, partition, next_offset, state)
VALUES ($1, $2, $3, $4, $5::jsonb)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
SET next_offset = EXCLUDED.next_offset, state = EXCLUDED.state, updated_at = now()
WHERE engine_snapshots.next_offset <= EXCLUDED.next_offset
"""
_SELECT = """
SELECT partition, state::text AS state FROM telemetry.engine_snapshots
WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int[])
"""


class SnapshotStore:
    """Reads and writes snapshots of a consumer group. A write never moves a partition's
    snapshot back to an older offset, so a fenced-off former owner cannot undo its successor."""

    def __init__(self, pool: asyncpg.Pool, group: str) -> None:
        self.pool = pool
        self.group = group

    async def load(self, topic: str, partitions: list[int]) -> dict[int, dict[str, Any]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_SELECT, self.group, topic, partitions)
        return {int(r["partition"]): orjson.loads(r["state"]) for r in rows}

    async def save(self, topic: str, snapshots: dict[int, dict[str, Any]]) -> None:
        """All partitions in one transaction: a commit is either fully covered or not at all."""
        rows = [
            (self.group, topic, p, int(s["next_offset"]), orjson.dumps(s).decode())
            for p, s in snapshots.items()
        ]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_UPSERT, rows)
