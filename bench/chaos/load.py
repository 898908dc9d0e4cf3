"""The load: a recorded telemetry stream and a customer placing (and now and then cancelling)
orders over HTTP, both carrying on through every fault.

Telemetry: one idempotent producer, event times from the wall clock, each tick acknowledged
before the next is made, so each device's event times only grow, but for two devices that
exercise event time per device: the first is a gateway uploading its backlog (behind the other
devices on its partition, on time by its own clock) and the second now and then sends a
reading behind its own clock (late, to the late topic). A tick that fails (the broker is down)
is sent again whole: what reaches the topic is at least what was acknowledged, and the checker
computes the windows and the late readings from the topic itself.

Orders: each order has its own ``Idempotency-Key`` and body; a connection error or a 5xx is
retried with the same key and body until the API answers, so every order the service stored
was answered 2xx once the service came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from bench.chaos.config import ChaosConfig
from millrace.demo.orders import PLANT_TOKEN
from millrace.masterdata.plant import Plant
from millrace.simulator.customer import order_request

READINGS = "telemetry.readings.v1"
Reading = tuple[str, str, int, float]  # device, metric, ts, value
BACKLOG_MS = 300_000
"""How far the first device's event times trail the wall clock: behind the other devices on its
partition by more than any window plus the lateness, within the backfill horizon (15 min)."""
LATE_EVERY = 10
LATE_BEHIND_MS = 15_000
"""Every ``LATE_EVERY`` ticks the second device sends one reading more this far behind its own
clock: late for the 10 s window always, for the 60 s one at times."""


@dataclass
class LoadTally:
    readings_acked: list[Reading] = field(default_factory=list)
    tick_retries: int = 0
    accepted: dict[str, str] = field(default_factory=dict)
    """Idempotency-Key -> order id of the 2xx answer."""
    refused: dict[str, int] = field(default_factory=dict)
    http_retries: int = 0
    cancels: dict[str, int] = field(default_factory=dict)


def tick_messages(
    rng: random.Random,
    devices: list[str],
    metrics: int,
    last_ts: dict[str, int],
    now_ms: int,
    tick: int = 0,
) -> list[tuple[str, list[Reading]]]:
    """One reading of every metric per device, the first device ``BACKLOG_MS`` behind the
    clock; a device's times strictly increase, but for the second device's extra reading
    behind its clock on every ``LATE_EVERY``-th tick."""
    out = []
    for i, device in enumerate(devices):
        ts = max(now_ms - (BACKLOG_MS if i == 0 else 0), last_ts.get(device, -1) + 1)
        last_ts[device] = ts
        values = [round(rng.gauss(50.0, 10.0), 3) for _ in range(metrics)]
        rows = [(device, f"m{j}", ts, v) for j, v in enumerate(values)]
        if i == 1 and tick % LATE_EVERY == LATE_EVERY - 1:
            rows.append((device, "m0", ts - LATE_BEHIND_MS, round(rng.gauss(50.0, 10.0), 3)))
        out.append((device, rows))
    return out


def producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=15_000,
        retry_backoff_ms=500,
        client_id="chaos-load",
    )


async def telemetry_load(
    cfg: ChaosConfig, bootstrap: str, tally: LoadTally, stop: asyncio.Event
) -> None:
    rng = random.Random(cfg.seed)
    devices = [f"chaos-dev-{i:02d}" for i in range(cfg.devices)]
    last_ts: dict[str, int] = {}
    prod = producer(bootstrap)
    await prod.start()
    tick = 0
    try:
        while not stop.is_set():
            now_ms = time.time_ns() // 1_000_000
            messages = tick_messages(rng, devices, cfg.metrics, last_ts, now_ms, tick)
            tick += 1
            while True:
                try:
                    futures = [
                        await prod.send(READINGS, _encode(device, rs), key=device.encode())
                        for device, rs in messages
                    ]
                    await asyncio.gather(*futures)
                    break
                except KafkaError:
                    tally.tick_retries += 1
                    await asyncio.sleep(1.0)
            for _, rs in messages:
                tally.readings_acked.extend(rs)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.tick_s)
    finally:
        await prod.stop()


def _encode(device: str, readings: list[Reading]) -> bytes:
    rows = [{"metric": m, "ts": ts, "value": v} for _, m, ts, v in readings]
    return orjson.dumps({"device_id": device, "readings": rows})


async def _until_answered(
    client: httpx.AsyncClient, tally: LoadTally, method: str, url: str, **kw: Any
) -> httpx.Response:
    while True:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.request(method, url, **kw)
            if r.status_code < 500:
                return r
        tally.http_retries += 1
        await asyncio.sleep(1.0)


async def orders_load(
    cfg: ChaosConfig, url: str, plant: Plant, tally: LoadTally, stop: asyncio.Event
) -> None:
    rng = random.Random(cfg.seed)
    auth = {"Authorization": f"Bearer {PLANT_TOKEN}"}
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while not stop.is_set():
            n += 1
            key = f"chaos-{cfg.seed}-{n}"
            body = order_request(plant, rng, datetime.now(UTC))
            headers = auth | {"Idempotency-Key": key}
            r = await _until_answered(
                client, tally, "POST", "/v1/orders", json=body, headers=headers
            )
            if r.is_success:
                order_id = str(r.json()["order_id"])
                tally.accepted[key] = order_id
                if rng.randrange(cfg.cancel_one_in) == 0:
                    path = f"/v1/orders/{order_id}/cancel"
                    c = await _until_answered(
                        client, tally, "POST", path, json={"reason": "chaos"}, headers=auth
                    )
                    code = str(c.status_code)
                    tally.cancels[code] = tally.cancels.get(code, 0) + 1
            else:
                tally.refused[str(r.status_code)] = tally.refused.get(str(r.status_code), 0) + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), cfg.order_every_s)
