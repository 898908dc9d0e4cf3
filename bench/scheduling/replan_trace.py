"""Where the re-planning time goes, read back from the service's database after a run: for each
plan version a machine going down made, the DOWN record's inbox commit, the plan's commit (its
outbox rows) and the relay's send, and the solve time the plan records.

``received_at`` and ``created_at`` are the times their transactions began, so "inbox to commit"
covers the coalescing wait, the snapshot, the solve and building the events; "commit to sent" is
the relay's wake-up and produce (it marks a batch sent after the broker acknowledged it).
"""

from __future__ import annotations

from typing import Any

import asyncpg

QUERY = """
WITH o AS (
    SELECT (convert_from(payload, 'UTF8')::jsonb ->> 'version')::int AS version,
           created_at, sent_at
    FROM scheduling.outbox WHERE topic = 'scheduling.schedule-published.v1'
)
SELECT p.version, p.status, p.solve_seconds,
       extract(epoch FROM o.created_at - i.received_at) AS inbox_to_commit,
       extract(epoch FROM o.sent_at - o.created_at) AS commit_to_sent
FROM scheduling.plans p
JOIN o ON o.version = p.version
CROSS JOIN LATERAL (
    SELECT max(received_at) AS received_at FROM scheduling.inbox
    WHERE topic = 'telemetry.machine-states.v1' AND received_at <= o.created_at
) i
WHERE p.plan_id = $1 AND 'machine-down' = ANY(p.triggers)
ORDER BY p.version
"""


async def stages(db: str, plan_id: str) -> list[dict[str, Any]]:
    """One row per machine-down version, in version order."""
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(QUERY, plan_id)
    finally:
        await conn.close()
    return [
        {
            "version": r["version"],
            "status": r["status"],
            "solve_s": round(float(r["solve_seconds"]), 3),
            "inbox_to_commit_s": _s(r["inbox_to_commit"]),
            "commit_to_sent_s": _s(r["commit_to_sent"]),
        }
        for r in rows
    ]


def _s(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
