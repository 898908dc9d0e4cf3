"""One chaos run from start to verdict: private Kafka and PostgreSQL, topics and master data,
the services and the shop floor, the load, the timeline of faults and poison, the drain, the
checks. Returns the report; the servers and children it started are stopped on the way out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

from bench.chaos import drain, timeline
from bench.chaos.checks import run_checks
from bench.chaos.config import SERVICES, ChaosConfig
from bench.chaos.dlq import Poison
from bench.chaos.faults import plan_faults
from bench.chaos.infra import Infra
from bench.chaos.load import LoadTally, orders_load, telemetry_load
from bench.chaos.services import Fleet, build_fleet, stop_all
from bench.chaos.source import Source, prepare
from contracts.manifest import TOPICS
from millrace.demo.children import wait_http_ok
from millrace.masterdata.plant import load_plant
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

READY_TIMEOUT_S = 120.0


def say(text: str) -> None:
    print(f"chaos: {text}", file=sys.stderr, flush=True)


async def _watch(fleet: Fleet, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        fleet.watch(time.monotonic() - t0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _setup(infra: Infra, cfg: ChaosConfig, run_dir: Path, src: Source) -> Fleet:
    infra.start()
    say(f"kafka {infra.bootstrap}, postgres up; state in {run_dir}")
    await ensure_topics(ServiceSettings(kafka_bootstrap=infra.bootstrap), TOPICS)
    plant = src.root / "deploy" / "local" / "plant.yaml"
    cli = [sys.executable, "-m", "millrace.cli", "masterdata", "load", str(plant)]
    env = {**os.environ, **src.env(), "MILLRACE_KAFKA_BOOTSTRAP": infra.bootstrap}
    proc = await asyncio.create_subprocess_exec(
        *cli, "--ensure-topics", env=env, cwd=src.root, stdout=PIPE, stderr=STDOUT
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"masterdata load failed: {out.decode()}")
    fleet = build_fleet(cfg, run_dir, src, infra.bootstrap, infra.database_url)
    for name in SERVICES:
        fleet.start(name)
        await wait_http_ok(fleet.children[name], f"{fleet.url(name)}/readyz", READY_TIMEOUT_S)
        say(f"{name} ready on {fleet.url(name)}")
    fleet.start("simulator")
    return fleet


async def _load_phase(
    cfg: ChaosConfig, infra: Infra, fleet: Fleet, tally: LoadTally, src: Source, t0: float
) -> tuple[list[dict[str, Any]], list[Poison]]:
    faults = plan_faults(
        cfg.seed, cfg.duration_s, SERVICES, cfg.kills_per_service, cfg.kill_pause_s,
        cfg.server_pause_s,
    )  # fmt: skip
    stop = asyncio.Event()
    plant = load_plant(src.root / "deploy" / "local" / "plant.yaml")
    loads = [
        asyncio.create_task(telemetry_load(cfg, infra.bootstrap, tally, stop)),
        asyncio.create_task(orders_load(cfg, fleet.url("orders"), plant, tally, stop)),
    ]
    poison_task = asyncio.create_task(timeline.run_poison(infra.bootstrap, t0, cfg.duration_s))
    say(f"load for {cfg.duration_s:g} s with {len(faults)} faults")
    done = await timeline.run_faults(faults, t0, fleet, infra)
    poison = await poison_task
    await asyncio.sleep(max(0.0, t0 + cfg.duration_s - time.monotonic()))
    stop.set()
    await asyncio.gather(*loads)
    await stop_all(fleet, ["simulator"], 15.0)
    return done, poison


async def run(cfg: ChaosConfig) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="millrace-chaos-"))
    src = prepare(cfg.source, run_dir / "src")
    say(f"children run {src.kind} at {src.commit[:12]} ({src.uncommitted_files} files differ)")
    infra = Infra(run_dir)
    tally = LoadTally()
    marks = {"start": time.monotonic()}
    fleet: Fleet | None = None
    watching = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    try:
        fleet = await _setup(infra, cfg, run_dir, src)
        t0 = marks["load"] = time.monotonic()
        # Until the checks are done: a service that exits during the drain is started again
        # (and recorded), as its orchestrator would.
        watcher = asyncio.create_task(_watch(fleet, t0, watching))
        faults, poison = await _load_phase(cfg, infra, fleet, tally, src, t0)
        marks["drain"] = time.monotonic()
        closers = await drain.send_closers(infra.bootstrap)
        left = await drain.wait_settled(infra.bootstrap, infra.database_url, cfg.drain_timeout_s)
        say(f"drained: {left}")
        marks["check"] = time.monotonic()
        verdicts = await run_checks(
            cfg, infra.bootstrap, infra.database_url, fleet.url("scheduling"), tally, poison
        )
        marks["end"] = time.monotonic()
    finally:
        watching.set()
        if watcher is not None:
            await watcher
        if fleet is not None:
            await stop_all(fleet, [n for n in fleet.children if n != "simulator"], 40.0)
        infra.stop()
    ok = all(v.ok for v in verdicts)
    if ok:
        # The logs stay for a look; the data and the snapshot only matter when a check failed.
        for part in ("kafka", "postgres", "src"):
            shutil.rmtree(run_dir / part, ignore_errors=True)
    return {
        "ok": ok,
        "config": {**asdict(cfg), "windows": cfg.windows_spec},
        "state_dir": str(run_dir),
        "source": {
            "kind": src.kind,
            "commit": src.commit,
            "uncommitted_files_in_tree": src.uncommitted_files,
        },
        "durations_s": {
            "setup": round(marks["load"] - marks["start"], 1),
            "load": round(marks["drain"] - marks["load"], 1),
            "drain": round(marks["check"] - marks["drain"], 1),
            "check": round(marks["end"] - marks["check"], 1),
            "total": round(marks["end"] - marks["start"], 1),
        },
        "faults": faults,
        "unexpected_exits": fleet.unexpected_exits if fleet else [],
        "poison": [asdict(p) for p in poison],
        "load": {
            "readings_acked": len(tally.readings_acked),
            "telemetry_tick_retries": tally.tick_retries,
            "orders_accepted": len(tally.accepted),
            "orders_refused": tally.refused,
            "order_cancels": tally.cancels,
            "http_retries": tally.http_retries,
            "closing_readings": closers,
        },
        "drain_left": left,
        "invariants": {v.name: v.as_dict() for v in verdicts},
    }
