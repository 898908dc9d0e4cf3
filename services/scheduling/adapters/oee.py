"""The OEE reporter: once a machine's period has closed (plus a grace time for late events),
compute its OEE from the state history, the completions and the plan's calendar, and commit
the report with its ``scheduling.oee-reported.v1`` event in one transaction.

Periods are reported in order per machine, each once (``oee_reports`` primary key; the event id
names machine and period). Events arriving after a period was reported do not change it. A
machine is reported from the last closed period when it is first seen, not back-filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from contracts.scheduling import OeeReported
from services.scheduling import metrics as m
from services.scheduling.adapters.postgres import OUTBOX_CHANNEL
from services.scheduling.adapters.rows import oee_row
from services.scheduling.domain.calendar import merge, off_shift
from services.scheduling.domain.model import Interval
from services.scheduling.domain.oee import Completion, Oee, oee
from services.scheduling.domain.problem import Rules, duration
from services.scheduling.domain.state import RoutingStep

MAX_PERIODS = 48  # per machine and round, so a long outage catches up in bounded steps


class OeeReporter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        rules: Rules,
        *,
        period_s: int,
        grace_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._rules = rules
        self._period = period_s
        self._grace = grace_s
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        poll = min(60.0, max(1.0, self._period / 4))
        while not stop.is_set():
            await self.report_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)

    async def report_once(self) -> int:
        """Report every closed period not reported yet; return how many."""
        closed = (int(self._clock()) - self._grace) // self._period * self._period
        done = 0
        async with self._pool.acquire() as conn:
            machines = await conn.fetch(
                "SELECT m.machine_id, m.work_center, max(r.period_start) AS last"
                " FROM scheduling.machines m LEFT JOIN scheduling.oee_reports r"
                " USING (machine_id) GROUP BY m.machine_id, m.work_center"
            )
            for row in machines:
                first = closed - self._period if row["last"] is None else row["last"] + self._period
                for start in range(first, closed, self._period)[:MAX_PERIODS]:
                    if await self._report(conn, row["machine_id"], row["work_center"], start):
                        done += 1
        return done

    async def _report(self, conn: Any, machine_id: str, work_center: str, start: int) -> bool:
        period = Interval(start, start + self._period)
        async with conn.transaction():
            states = await conn.fetch(
                "(SELECT since, state FROM scheduling.state_log WHERE machine_id = $1"
                " AND since <= $2 ORDER BY since DESC, state LIMIT 1) UNION ALL"
                " (SELECT since, state FROM scheduling.state_log WHERE machine_id = $1"
                " AND since > $2 AND since < $3) ORDER BY since, state",
                machine_id,
                period.start,
                period.end,
            )
            completions = await self._completions(conn, machine_id, period)
            off = merge(
                [
                    *self._rules.maintenance.get(machine_id, ()),
                    *off_shift(self._rules.shifts.get(work_center, ()), period.start, 1),
                ]
            )
            figures = oee(period, off, [(r["since"], r["state"]) for r in states], completions)
            inserted = await conn.fetchval(
                "INSERT INTO scheduling.oee_reports (machine_id, period_start, period_end, oee)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                machine_id,
                period.start,
                period.end,
                figures.oee,
            )
            if not inserted:
                return False
            event = report(machine_id, work_center, period, figures)
            topic, key, ce_id, headers, payload = oee_row(event)
            await conn.execute(
                "INSERT INTO scheduling.outbox (topic, msg_key, ce_id, headers, payload)"
                " VALUES ($1, $2, $3, $4::jsonb, $5)",
                topic,
                key,
                ce_id,
                headers,
                payload,
            )
            await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
        m.OEE_REPORTS.inc()
        for factor in ("availability", "performance", "quality", "oee"):
            value = getattr(figures, factor)
            m.OEE.labels(machine_id, factor).set(float("nan") if value is None else value)
        return True

    async def _completions(self, conn: Any, machine_id: str, period: Interval) -> list[Completion]:
        """Operations completed on the machine in the period, with their routing's ideal time
        (for the units reported, else the line's quantity)."""
        rows = await conn.fetch(
            "SELECT p.seq, p.started, p.completed, p.good, p.scrap, o.lines, pr.routing,"
            " split_part(p.work_order_id, '/', -1) AS line_no"
            " FROM scheduling.progress p"
            " LEFT JOIN scheduling.orders o"
            " ON o.order_id = regexp_replace(p.work_order_id, '/[0-9]+$', '')"
            " LEFT JOIN LATERAL (SELECT x->>'sku' AS sku, (x->>'quantity')::int AS quantity"
            " FROM jsonb_array_elements(o.lines) x WHERE x->>'line_no' ="
            " split_part(p.work_order_id, '/', -1)) l ON true"
            " LEFT JOIN scheduling.products pr ON pr.sku = l.sku"
            " WHERE p.machine_id = $1 AND p.completed >= $2 AND p.completed < $3",
            machine_id,
            period.start,
            period.end,
        )
        out = []
        for r in rows:
            good, scrap = r["good"] or 0, r["scrap"] or 0
            steps = {s["seq"]: RoutingStep(**s) for s in orjson.loads(r["routing"] or "[]")}
            lines = {str(x["line_no"]): x for x in orjson.loads(r["lines"] or "[]")}
            step, line = steps.get(r["seq"]), lines.get(r["line_no"])
            units = good + scrap or (line["quantity"] if line else 0)
            ideal = duration(step, units, self._rules.duration_scale) if step else None
            if r["started"] is None:  # start unknown: count it as on time
                actual = ideal if ideal is not None else 0
            else:
                actual = max(0, r["completed"] - r["started"])
            out.append(Completion(actual if ideal is None else ideal, actual, good, scrap))
        return out


def report(machine_id: str, work_center: str, period: Interval, f: Oee) -> OeeReported:
    return OeeReported(
        machine_id=machine_id,
        work_center=work_center,
        period_start=period.start * 1000,
        period_end=period.end * 1000,
        planned_s=f.planned_s,
        running_s=f.running_s,
        ideal_s=f.ideal_s,
        actual_s=f.actual_s,
        good=f.good,
        scrap=f.scrap,
        availability=f.availability,
        performance=f.performance,
        quality=f.quality,
        oee=f.oee,
        reported_at=datetime.now(UTC),
    )
