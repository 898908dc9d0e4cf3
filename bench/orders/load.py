"""The load generator, run as its own process: fixed concurrency, fixed duration, one POST
after another per worker, each with a fresh Idempotency-Key.

Prints one JSON object: request count, errors, latency percentiles, and for every 201 the
order id with the wall-clock time its POST was sent (for the POST-to-Kafka latency).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def body() -> bytes:
    due = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    return orjson.dumps(
        {
            "customer": "acme",  # a customer of the sample plant: unknown ones are refused
            "lines": [
                {"sku": "frame-road", "quantity": 2, "options": {"size": "54", "colour": "red"}},
                {"sku": "stem-cnc", "quantity": 2, "options": {"engraving": "logo"}},
            ],
            "due_date": due,
            "priority": "normal",
        }
    )


async def worker(
    client: httpx.AsyncClient, path: str, token: str, until: float, out: dict[str, Any]
) -> None:
    payload = body()
    run = uuid.uuid4().hex[:8]
    i = 0
    while time.monotonic() < until:
        i += 1
        headers = {
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": f"{run}-{i}",
            "content-type": "application/json",
        }
        sent_wall = time.time()
        start = time.perf_counter()
        try:
            r = await client.post(path, content=payload, headers=headers)
        except httpx.HTTPError:
            out["errors"] += 1
            continue
        out["latencies"].append(time.perf_counter() - start)
        if r.status_code >= 300:
            out["errors"] += 1
        elif r.status_code == 201:
            out["sent"][r.json()["order_id"]] = sent_wall


async def run(url: str, path: str, token: str, concurrency: int, duration: float) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": 0, "latencies": [], "sent": {}}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        warm_until = time.monotonic() + min(5.0, duration / 10)
        await asyncio.gather(
            *(
                worker(client, path, token, warm_until, {"errors": 0, "latencies": [], "sent": {}})
                for _ in range(concurrency)
            )
        )
        started = time.monotonic()
        until = started + duration
        await asyncio.gather(*(worker(client, path, token, until, out) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    lat = out["latencies"]
    return {
        "path": path,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 2),
        "requests": len(lat),
        "errors": out["errors"],
        "requests_per_s": round(len(lat) / elapsed, 1),
        "latency_ms": {
            "p50": round(percentile(lat, 0.50) * 1000, 2),
            "p99": round(percentile(lat, 0.99) * 1000, 2),
        },
        "sent": out["sent"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.path, args.token, args.concurrency, args.duration))
    sys.stdout.buffer.write(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
