"""Re-planning on Kafka: the sample plant scaled to 20 machines (each machine and a twin) with
300 open work orders; 20 times a machine goes DOWN, and the delay from that machine-state
record to the new ``scheduling.schedule-published.v1`` record is taken from the two records'
Kafka timestamps. Then the warm plan (solved within the service's time limit, hinted by the
previous plan) is compared with a cold solve of the same state given 60 s.

Runs ``millrace run scheduling`` as a process against ``MILLRACE_KAFKA_BOOTSTRAP`` and a fresh
database on ``MILLRACE_DATABASE_URL``. The twins are named after the run and withdrawn
(tombstones) at the end; only they go DOWN. On a broker that others use at the same time, their
orders join the plan and their machines' DOWN events re-plan too (the published record names
triggers, not machines), so such a run measures a larger and noisier plant.
``python -m bench.scheduling.replan`` writes the ``replan`` key of
``bench/results/scheduling.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.orders.stack import local_stack
from bench.scheduling.replan_feed import Feed
from bench.scheduling.replan_trace import stages
from contracts.manifest import TOPICS
from millrace.masterdata.plant import load_plant
from services.scheduling.adapters.snapshot import snapshot
from services.scheduling.config import rules_of
from services.scheduling.domain.model import Plan
from services.scheduling.domain.problem import build
from services.scheduling.domain.solver import solve
from services.scheduling.settings import SchedulingSettings
from shared.kafka import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "scheduling.json"
PUBLISHED = "scheduling.schedule-published.v1"
FAILURES, WORK_ORDERS, COLD_S = 20, 300, 60.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def fresh_database(url: str) -> str:
    name = f"bench_scheduling_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class Published:
    """Reads ``schedule-published`` records of one plan id as they arrive."""

    def __init__(self, bootstrap: str, plan_id: str) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._plan_id = plan_id

    async def start(self) -> None:
        await self._consumer.start()
        parts = self._consumer.partitions_for_topic(PUBLISHED)
        while not parts:
            await self._consumer._client.force_metadata_update()
            parts = self._consumer.partitions_for_topic(PUBLISHED)
        tps = [TopicPartition(PUBLISHED, p) for p in sorted(parts)]
        self._consumer.assign(tps)
        for tp, end in (await self._consumer.end_offsets(tps)).items():
            self._consumer.seek(tp, end)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def next(
        self, trigger: str | None, after_ms: int, timeout_s: float = 120, after_version: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """The first record with ``trigger`` (None: any) appended at or after ``after_ms`` (and
        a version past ``after_version``): its Kafka timestamp and its data."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in (await self._consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    data = orjson.loads(r.value)
                    if (
                        data["plan_id"] == self._plan_id
                        and (trigger is None or trigger in data["triggers"])
                        and r.timestamp >= after_ms
                        and data["version"] > after_version
                    ):
                        return r.timestamp, data
        raise TimeoutError(f"no {trigger} plan within {timeout_s} s")


def service(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "millrace.cli", "run", "scheduling"],
        env={**os.environ, **env},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def cold(settings: SchedulingSettings, db: str, plan_id: str, version: int) -> dict[str, Any]:
    """The same state as plan ``version`` solved without hints, for ``COLD_S`` seconds."""
    conn = await asyncpg.connect(db)
    try:
        row = await conn.fetchrow(
            "SELECT planned_at, tardiness, makespan, status FROM scheduling.plans"
            " WHERE plan_id = $1 AND version = $2",
            plan_id,
            version,
        )
        assert row is not None
        state, _ = await snapshot(conn, row["planned_at"], plan_id)
    finally:
        await conn.close()
    problem = build(state, rules_of(settings))
    problem = type(problem)(
        now=problem.now,
        machines=problem.machines,
        work_orders=problem.work_orders,
        frozen=problem.frozen,
        done=problem.done,
    )
    plan: Plan = await asyncio.to_thread(solve, problem, time_limit_s=COLD_S, workers=2)
    warm = (int(row["tardiness"]), int(row["makespan"]))
    cold_ = (plan.objective.weighted_tardiness, plan.objective.makespan)
    return {
        "operations": sum(len(w.operations) for w in problem.work_orders),
        "warm": {"weighted_tardiness": warm[0], "makespan_s": warm[1], "status": row["status"]},
        "cold": {
            "weighted_tardiness": cold_[0],
            "makespan_s": cold_[1],
            "status": plan.status.value,
            "time_limit_s": COLD_S,
        },
        "tardiness_ratio": round(warm[0] / cold_[0], 4) if cold_[0] else None,
        "makespan_ratio": round(warm[1] / cold_[1], 4) if cold_[1] else None,
    }


async def run(time_limit_s: float, workers: int) -> dict[str, Any]:
    bootstrap = os.environ.get("MILLRACE_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    base = os.environ["MILLRACE_DATABASE_URL"]
    db = await fresh_database(base)
    plan_id = f"bench-{uuid.uuid4().hex[:6]}"
    group = f"bench-scheduling-{uuid.uuid4().hex[:6]}"
    env = {
        "MILLRACE_DATABASE_URL": db,
        "MILLRACE_KAFKA_BOOTSTRAP": bootstrap,
        "MILLRACE_SCHEDULING_PLAN_ID": plan_id,
        "MILLRACE_SCHEDULING_CONSUMER_GROUP": group,
        "MILLRACE_SCHEDULING_TIME_LIMIT_S": str(time_limit_s),
        "MILLRACE_SCHEDULING_WORKERS": str(workers),
        "MILLRACE_HTTP_PORT": "0",
        "MILLRACE_LOG_LEVEL": "WARNING",
    }
    settings = SchedulingSettings(database_url=db, kafka_bootstrap=bootstrap)
    await ensure_topics(settings, TOPICS)
    feed = Feed(settings, load_plant(ROOT / "deploy" / "local" / "plant.yaml"), group, plan_id)
    await feed.start()
    published = Published(bootstrap, plan_id)
    await published.start()
    proc = service(env, Path(os.environ.get("TMPDIR", "/tmp")) / f"{plan_id}.log")
    delays: list[float] = []
    improved: list[float] = []
    try:
        await feed.machines()
        rng = random.Random(24)
        now = datetime.now(UTC)
        appended = await feed.orders(rng, WORK_ORDERS, now.date() + timedelta(days=2))
        # the orders may be consumed before the master data they need (its topics' backlog on a
        # shared broker), and then the plan that has them all is a masterdata version
        _, first = await published.next(None, appended, 300)
        while first["work_orders"] < WORK_ORDERS:
            _, first = await published.next(None, appended, 300)
        version = first["version"]
        for n in range(FAILURES):
            machine = rng.choice(feed.busy)
            down_at = await feed.state(machine, "DOWN")
            at, plan = await published.next("machine-down", down_at)
            delays.append((at - down_at) / 1000)
            version = plan["version"]
            # the solver's plan follows the quick one as the next version, unless it changed
            # nothing; it is the one compared with the cold solve
            with contextlib.suppress(TimeoutError):
                at, plan = await published.next(
                    "machine-down", down_at, 4 * time_limit_s + 4, after_version=version
                )
                version = plan["version"]
                improved.append((at - down_at) / 1000)
            if n < FAILURES - 1:
                up_at = await feed.state(machine, "RUNNING")
                await published.next("machine-up", up_at, after_version=version)
        trace = await stages(db, plan_id)
        comparison = await cold(settings, db, plan_id, version)
    finally:
        proc.terminate()
        proc.wait(30)
        await published.stop()
        await feed.withdraw()
        await feed.stop()
    return {
        "machines": len(feed.machine_ids),
        "work_orders": WORK_ORDERS,
        "failures": FAILURES,
        "time_limit_s": time_limit_s,
        "workers": workers,
        "down_to_published_s": {
            "p50": round(percentile(delays, 50), 3),
            "p99": round(percentile(delays, 99), 3),
            "max": round(max(delays), 3),
            "all": [round(d, 3) for d in delays],
        },
        # the solver's version after the quick one, when it changed the plan
        "down_to_solver_plan_s": {
            "count": len(improved),
            "p50": round(percentile(improved, 50), 3) if improved else None,
            "p99": round(percentile(improved, 99), 3) if improved else None,
        },
        "stages": trace,
        "warm_vs_cold": comparison,
    }


def main() -> int:
    """Measure on ``MILLRACE_KAFKA_BOOTSTRAP`` / ``MILLRACE_DATABASE_URL`` when set, otherwise on
    a local Kafka and PostgreSQL started for the run."""
    # the service's default limit: the DOWN delay no longer depends on it (the repaired plan comes
    # first), the quality of the plan after it does
    limit = float(os.environ.get("BENCH_SCHEDULING_TIME_LIMIT_S", "5.0"))
    if "MILLRACE_DATABASE_URL" in os.environ:
        result = asyncio.run(run(limit, 2))
    else:
        with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as (kafka, db):
            os.environ["MILLRACE_KAFKA_BOOTSTRAP"], os.environ["MILLRACE_DATABASE_URL"] = kafka, db
            result = asyncio.run(run(limit, 2))
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["replan"] = result
    RESULTS.write_text(json.dumps(existing, indent=1) + "\n")  # the file's own layout
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
