"""Carrying out the run's timeline: the planned faults and the two rounds of poison, each
recorded with when it really happened (a broker restart holds everything behind it up)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.chaos.dlq import Poison
from bench.chaos.faults import Fault
from bench.chaos.infra import Infra
from bench.chaos.poison import inject
from bench.chaos.services import Fleet

POISON_AT = (0.25, 0.75)


async def _until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_faults(
    faults: list[Fault], t0: float, fleet: Fleet, infra: Infra
) -> list[dict[str, Any]]:
    done = []
    for f in faults:
        await _until(t0 + f.at_s)
        at = time.monotonic() - t0
        pid: int | None
        if f.target in fleet.children:
            pid = fleet.kill(f.target)
            await asyncio.sleep(f.pause_s)
            fleet.start(f.target)
        else:
            server = infra.kafka if f.target == "kafka" else infra.postgres
            pid = server.status().pid
            (infra.kill_kafka if f.target == "kafka" else infra.kill_postgres)()
            await asyncio.sleep(f.pause_s)
            # Blocks the loop until the server answers: the load waits meanwhile, as a
            # producer facing a dead broker would.
            (infra.start_kafka if f.target == "kafka" else infra.start_postgres)()
        done.append({
            "target": f.target, "planned_s": f.at_s, "at_s": round(at, 2), "pid_killed": pid,
            "down_s": round(time.monotonic() - t0 - at, 2),
        })  # fmt: skip
    return done


async def run_poison(bootstrap: str, t0: float, duration_s: float) -> list[Poison]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", client_id="chaos-poison"
    )
    await producer.start()
    out: list[Poison] = []
    try:
        for n, fraction in enumerate(POISON_AT, start=1):
            await _until(t0 + fraction * duration_s)
            out += await inject(producer, n)
    finally:
        await producer.stop()
    return out
