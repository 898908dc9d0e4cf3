"""``make bench-orders``: 60 s of POST /v1/orders at fixed concurrency from a separate
process, then the same load against POST /v1/noop of the same app (auth and body parsing,
no database, no Kafka) as the framework ceiling. Reports requests/s, p50/p99 latency, the p99
from POST to ``orders.order-placed.v1`` on Kafka, and the ratio to the ceiling, into
``bench/results/orders.json``.

Uses ``MILLRACE_KAFKA_BOOTSTRAP`` / ``MILLRACE_DATABASE_URL`` when set, otherwise starts a
local Kafka and PostgreSQL for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.orders.load import percentile
from bench.orders.stack import OrdersUnderTest, kafka_arrivals, local_stack

RESULTS = Path(__file__).resolve().parents[1] / "results" / "orders.json"


def load(url: str, path: str, token: str, concurrency: int, duration: float) -> dict[str, Any]:
    """Run the load generator as its own process and return its JSON report."""
    cmd = [
        sys.executable,
        "-m",
        "bench.orders.load",
        "--url",
        url,
        "--path",
        path,
        "--token",
        token,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, timeout=duration + 300)
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


async def measure(args: argparse.Namespace, bootstrap: str, database_url: str) -> dict[str, Any]:
    async with OrdersUnderTest(bootstrap, database_url, Path(args.workdir)) as svc:
        _ends, arrivals, stop, reader = await kafka_arrivals(bootstrap)
        try:
            orders = await asyncio.to_thread(
                load, svc.url, "/v1/orders", svc.token, args.concurrency, args.duration
            )
            await svc.wait_outbox_drained(timeout_s=120)
            await asyncio.sleep(1.0)
        finally:
            stop.set()
            await reader
        noop = await asyncio.to_thread(
            load, svc.url, "/v1/noop", svc.token, args.concurrency, args.duration
        )
    sent: dict[str, float] = orders.pop("sent")
    noop.pop("sent")
    to_kafka = [arrivals[oid] - t for oid, t in sent.items() if oid in arrivals]
    missing = sum(1 for oid in sent if oid not in arrivals)
    orders["post_to_kafka_ms"] = {
        "p50": round(percentile(to_kafka, 0.50) * 1000, 2),
        "p99": round(percentile(to_kafka, 0.99) * 1000, 2),
        "events_seen": len(to_kafka),
        "events_missing": missing,
    }
    ratio = orders["requests_per_s"] / noop["requests_per_s"] if noop["requests_per_s"] else 0.0
    return {
        "benchmark": "orders intake: POST /v1/orders vs POST /v1/noop of the same app",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": (
            "Service, load generator, PostgreSQL and Kafka share this machine. Each POST checks "
            "the idempotency key, reads the products, and commits the order, its timeline and "
            "its outbox row in one transaction; order-placed reaches Kafka through the outbox "
            "relay. The ceiling is POST /v1/noop of the same process (auth and body parsing)."
        ),
        "orders": orders,
        "framework_ceiling": noop,
        "ratio_to_ceiling": round(ratio, 3),
    }


@contextlib.contextmanager
def infrastructure(workdir: Path) -> Iterator[tuple[str, str]]:
    bootstrap = os.environ.get("MILLRACE_KAFKA_BOOTSTRAP")
    database_url = os.environ.get("MILLRACE_DATABASE_URL")
    if bootstrap and database_url:
        yield bootstrap, database_url
        return
    with local_stack(workdir) as (k, d):
        yield bootstrap or k, database_url or d


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="millrace-bench-orders-") as tmp:
        Path(tmp).chmod(0o755)
        args.workdir = tmp
        with infrastructure(Path(tmp)) as (bootstrap, database_url):
            t0 = time.monotonic()
            report = asyncio.run(measure(args, bootstrap, database_url))
            report["wall_s"] = round(time.monotonic() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    o, n = report["orders"], report["framework_ceiling"]
    print(
        f"orders: {o['requests_per_s']} req/s, p50 {o['latency_ms']['p50']} ms, "
        f"p99 {o['latency_ms']['p99']} ms, POST->Kafka p99 {o['post_to_kafka_ms']['p99']} ms, "
        f"errors {o['errors']}\n"
        f"noop ceiling: {n['requests_per_s']} req/s, p99 {n['latency_ms']['p99']} ms\n"
        f"ratio to ceiling: {report['ratio_to_ceiling']}  -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
