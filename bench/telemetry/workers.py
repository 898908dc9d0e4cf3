"""One system under test, as its own process: ``python -m bench.telemetry.workers KIND ...``.

KIND is ``ceiling`` (aiokafka ``getmany`` drain + the hot-path decoder, committing),
``raw_drain`` (the same drain on the raw records of Millrace's consumer,
``services.telemetry.kafka.records``), ``millrace`` (the real :class:`Aggregator` with its real
clients, in the ``--role`` given) or ``quix``. Each runs until SIGTERM and then prints one JSON
line: wall time of its first record, its peak RSS and the CPU time it used.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from bench.telemetry.machine import own_cpu_s, peak_rss_mib
from services.telemetry.aggregator.collector import tune_gc
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.app import make_aggregator_clients
from services.telemetry.decode_fast import decode_readings_fast
from services.telemetry.engine.monitor import Monitor
from services.telemetry.kafka.records import RawRecord, make_raw_consumer
from services.telemetry.rules.book import load_rules
from services.telemetry.settings import TelemetrySettings
from shared.kafka import make_consumer

FIRST: list[float] = []
# Each system commits at its own default interval: Millrace 1 s (the ceiling too), Quix 5 s.
MILLRACE_COMMIT_MS = 1000
QUIX_COMMIT_S = 5.0


def mark_first() -> None:
    if not FIRST:
        FIRST.append(time.time())


def settings_for(args: argparse.Namespace) -> TelemetrySettings:
    settings = TelemetrySettings(
        kafka_bootstrap=args.bootstrap,
        telemetry_consumer_group=args.group,
        telemetry_windows=args.windows,
        telemetry_allowed_lateness_ms=args.lateness_ms,
        telemetry_commit_interval_ms=args.commit_ms or MILLRACE_COMMIT_MS,
        telemetry_idle_close_ms=args.idle_close_ms,
    )
    # Set after validation: the service requires a snapshot database for the alarms role, and
    # the benchmark's alarm engines run without one (--rules, no PostgreSQL).
    return settings.model_copy(update={"telemetry_role": args.role})


class TimedAggregator(Aggregator):
    """With ``BENCH_PROBE=<file>`` (``{role}`` in it is replaced by the process's role, so the
    two processes of a latency run apart write two files), also records where the loop's time
    goes: each poll's process and commit durations and the gap between polls (getmany),
    written on stop."""

    probe: dict[str, list[float]] | None = None
    _mark = 0.0

    async def process(self, batch: Mapping[TopicPartition, Sequence[RawRecord]]) -> None:
        if batch and not FIRST:
            mark_first()
        if self.probe is None:
            await super().process(batch)
            return
        t0 = time.perf_counter()
        if self._mark:
            self.probe["getmany"].append(t0 - self._mark)
        await super().process(batch)
        self._mark = time.perf_counter()
        self.probe["process"].append(self._mark - t0)
        marks = [p.windows.watermark for p in self.partitions.values() if p.windows.watermark > 0]
        if batch and marks:
            self.probe["watermark_lag"].append(time.time() - max(marks) / 1000)

    async def commit(
        self,
        *,
        background: bool = False,
        idle: dict[TopicPartition, tuple[int, int]] | None = None,
    ) -> None:
        if self.probe is None:
            await super().commit(background=background, idle=idle)
            return
        t0 = time.perf_counter()
        await super().commit(background=background, idle=idle)
        self.probe["commit"].append(time.perf_counter() - t0)
        self._mark += time.perf_counter() - t0


async def _loop_lag(out: list[float], stop: asyncio.Event) -> None:
    """How late a 5 ms sleep wakes up: how long something held the event loop."""
    while not stop.is_set():
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.sleep(0.005)
        lag = time.perf_counter() - t0 - 0.005
        out.append(lag)
        if lag > 0.1:  # was the process running (its own work) or waiting for a core?
            print(
                f"loop lag {lag * 1000:.0f} ms, cpu {1000 * (time.process_time() - c0):.0f} ms",
                file=sys.stderr,
                flush=True,
            )


def _gc_timer(probe: dict[str, list[float]]) -> Any:
    """A gc callback that records how long each collection took, per generation."""
    started = [0.0]

    def timer(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            probe[f"gc_gen{info['generation']}"].append(time.perf_counter() - started[0])

    return timer


def write_probe(probe: dict[str, list[float]], path: str) -> None:
    out = {}
    for name, values in probe.items():
        ordered = sorted(values)
        n = len(ordered)
        out[name] = {
            "n": n,
            "total_s": round(sum(ordered), 3),
            "p50_ms": round(1000 * ordered[n // 2], 2) if n else None,
            "p99_ms": round(1000 * ordered[min(n - 1, int(0.99 * n))], 2) if n else None,
            "max_ms": round(1000 * ordered[-1], 2) if n else None,
        }
    Path(path).write_text(json.dumps(out, indent=2))


async def millrace(args: argparse.Namespace, stop: asyncio.Event) -> None:
    settings = settings_for(args)
    clients = make_aggregator_clients(settings)  # the service's clients for this role
    await clients.start()
    monitor = None
    if args.rules and settings.runs_alarms:
        monitor = Monitor(load_rules(Path(args.rules)), settings.telemetry_allowed_lateness_ms)
    agg = TimedAggregator(settings, clients.consumer, clients.producer, monitor, clients.events)
    agg.readings_topic = args.topic
    agg.scheduler.emit_slice_s = float(
        os.environ.get("BENCH_EMIT_SLICE_S", agg.scheduler.emit_slice_s)
    )
    agg.scheduler.seal_slice_s = float(
        os.environ.get("BENCH_SEAL_SLICE_S", agg.scheduler.seal_slice_s)
    )
    probe_path = os.environ.get("BENCH_PROBE")
    lag_task: asyncio.Task[None] | None = None
    if probe_path:
        agg.probe = {"getmany": [], "process": [], "commit": [], "watermark_lag": []}
        agg.probe |= {f"gc_gen{g}": [] for g in range(3)}
        agg.probe["loop_lag"] = []
        gc.callbacks.append(_gc_timer(agg.probe))
        lag_task = asyncio.create_task(_loop_lag(agg.probe["loop_lag"], stop))
    try:
        await agg.run(stop)
    finally:
        if lag_task is not None:
            lag_task.cancel()
        if agg.probe is not None and probe_path:
            write_probe(agg.probe, probe_path.replace("{role}", args.role))
        await clients.stop()


async def ceiling(args: argparse.Namespace, stop: asyncio.Event, *, raw: bool = False) -> None:
    settings = settings_for(args)
    consumer = (make_raw_consumer if raw else make_consumer)(
        settings,
        args.topic,
        group_id=args.group,
        max_poll_records=settings.telemetry_max_poll_records,
    )
    await consumer.start()
    tune_gc()  # the aggregator's collector settings: the ceiling stays an upper bound
    skew = settings.telemetry_max_future_skew_ms
    interval = (args.commit_ms or MILLRACE_COMMIT_MS) / 1000
    last_commit = time.monotonic()
    positions: dict[TopicPartition, int] = {}
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            if batch:
                mark_first()
            now = time.time_ns() // 1_000_000
            for tp, records in batch.items():
                for r in records:
                    decode_readings_fast(r.value, r.key, now, skew)
                positions[tp] = records[-1].offset + 1
            if positions and time.monotonic() - last_commit >= interval:
                await consumer.commit(dict(positions))
                last_commit = time.monotonic()
    finally:
        await consumer.stop()


def quix(args: argparse.Namespace) -> None:
    from bench.telemetry.quix_app import build  # noqa: PLC0415 (only in the bench venv)

    sizes = TelemetrySettings(kafka_bootstrap=args.bootstrap, telemetry_windows=args.windows)
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state:
        app = build(
            args.bootstrap,
            args.group,
            args.topic,
            args.out_topic,
            sizes.window_sizes_ms,
            args.lateness_ms,
            Path(state),
            mark_first,
            args.commit_ms / 1000 if args.commit_ms else QUIX_COMMIT_S,
        )
        # Quix Streams gets the collector settings Millrace runs with, so that the comparison
        # is of the stream processors, not of a runtime knob either of them could turn.
        tune_gc()
        app.run()


async def run_async(kind: str, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if kind == "millrace":
        await millrace(args, stop)
    else:
        await ceiling(args, stop, raw=kind == "raw_drain")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["ceiling", "raw_drain", "millrace", "quix"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--out-topic", default="bench.quix.windows")
    parser.add_argument("--windows", default="10s,60s")
    parser.add_argument("--lateness-ms", type=int, default=5000)
    parser.add_argument(
        "--commit-ms", type=int, default=0, help="commit interval; 0 = the system's default"
    )
    parser.add_argument("--idle-close-ms", type=int, default=2000)
    parser.add_argument("--rules", default="")
    parser.add_argument("--role", choices=["all", "windows", "alarms"], default="all")
    args = parser.parse_args()
    if args.kind == "quix":
        quix(args)
    else:
        asyncio.run(run_async(args.kind, args))
    report: dict[str, Any] = {
        "first_record_at": FIRST[0] if FIRST else None,
        "rss_peak_mib": peak_rss_mib(),
        "cpu_s": own_cpu_s(),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
