"""One demo run: topics, the telemetry service, the simulator and the live view, then a clean stop.

Order matters: the view's consumer pins its positions before anything produces, the service
is ready before the simulator sends to its HTTP ingest, and on the way out the simulator stops
before the service so the service's last commit covers everything that was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from contracts.manifest import TOPICS
from millrace.demo.children import Child, ChildError, exit_label, wait_http_ok
from millrace.demo.feed import Feed
from millrace.demo.orders import OrdersDemo
from millrace.demo.state import DemoState
from millrace.demo.view import counters_line, render_screen, summary_line
from millrace.infra.process import free_port, log_tail, port_open
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

READY_TIMEOUT_S = 90.0
SIMULATOR_STOP_S = 15.0
SERVICE_STOP_S = 40.0
DEFAULT_HTTP_PORT = 8080
# The sample rules fit the simulator's signals, so the demo shows alarms and machine states.
ALARM_RULES = Path(__file__).resolve().parents[2] / "deploy" / "local" / "alarm-rules.yaml"
ORDERS_HTTP_PORT = 8081


@dataclass(frozen=True)
class DemoOptions:
    """What the user chose on the command line; defaults show windows within a minute."""

    devices: int = 20
    metrics: int = 3
    rate: float = 120.0
    seed: int = 1
    windows: str = "5s,60s"
    lateness_ms: int = 2_000
    duration_s: float | None = None
    http_port: int = 0
    refresh_s: float = 1.0


@dataclass(frozen=True)
class Wiring:
    """Where the demo runs: endpoints, its log dir, and how it talks to the user."""

    bootstrap: str
    database_url: str
    run_dir: Path
    out: TextIO
    tty: bool


def _child_env(opts: DemoOptions, wiring: Wiring, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "MILLRACE_KAFKA_BOOTSTRAP": wiring.bootstrap,
        "MILLRACE_DATABASE_URL": wiring.database_url,
        "MILLRACE_HTTP_PORT": str(port),
        "MILLRACE_LOG_FORMAT": "json",
        "MILLRACE_TELEMETRY_WINDOWS": opts.windows,
        "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": str(opts.lateness_ms),
    }


def _children(opts: DemoOptions, wiring: Wiring, port: int) -> tuple[Child, Child]:
    env = _child_env(opts, wiring, port)
    cli = [sys.executable, "-m", "millrace.cli"]
    telemetry = Child(
        "telemetry",
        [*cli, "run", "telemetry"],
        {**env, "MILLRACE_TELEMETRY_ALARM_RULES": str(ALARM_RULES)},
        wiring.run_dir / "telemetry.log",
    )
    simulator = Child(
        "simulator",
        [
            *cli, "simulate", "--devices", str(opts.devices), "--metrics", str(opts.metrics),
            "--rate", str(opts.rate), "--seed", str(opts.seed), "--transport", "both",
            "--http-url", f"http://127.0.0.1:{port}/v1/readings",
        ],
        env,
        wiring.run_dir / "simulator.log",
    )  # fmt: skip
    return telemetry, simulator


async def run_demo(opts: DemoOptions, wiring: Wiring, stop: asyncio.Event) -> int:
    """Run until ``stop`` is set, ``duration_s`` passes or a child dies; 0 unless a child died."""
    settings = ServiceSettings(kafka_bootstrap=wiring.bootstrap)
    created = await ensure_topics(settings, TOPICS)
    print(
        f"topics: {len(TOPICS)} in the manifest, {len(created)} created (DLQs included)",
        file=sys.stderr,
    )
    # The README's curl examples use 8080; fall back to a free port when it is taken.
    port = opts.http_port or (
        free_port() if port_open(f"127.0.0.1:{DEFAULT_HTTP_PORT}") else DEFAULT_HTTP_PORT
    )
    telemetry, simulator = _children(opts, wiring, port)
    orders_port = free_port() if port_open(f"127.0.0.1:{ORDERS_HTTP_PORT}") else ORDERS_HTTP_PORT
    orders = OrdersDemo(_child_env(opts, wiring, orders_port), wiring.run_dir, wiring.bootstrap,
                        orders_port)  # fmt: skip
    feed = Feed(wiring.bootstrap)
    halt = asyncio.Event()
    task: asyncio.Task[None] | None = None
    state: DemoState | None = None
    code, ended = 0, 0.0
    try:
        await feed.start()
        telemetry.start()
        print(f"telemetry: starting (pid {telemetry.pid}, log {telemetry.log})", file=sys.stderr)
        await _until_ready(telemetry, f"http://127.0.0.1:{port}/readyz", stop)
        if not stop.is_set():
            await orders.start(READY_TIMEOUT_S)
        if not stop.is_set():
            simulator.start()
            state = DemoState(started=time.monotonic())
            task = asyncio.create_task(feed.run(state, halt))
            code = await _watch(
                opts,
                wiring=wiring,
                state=state,
                children=(telemetry, simulator, orders.child),
                stop=stop,
                port=port,
                extra=orders.lines,
            )
    except ChildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        await orders.stop_simulation()
        await _shut_down(wiring, simulator, telemetry, orders.child)
        halt.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        await feed.close()
    if state is not None:
        _print_summary(wiring, state, simulator, ended or time.monotonic())
        print(f"summary: {orders.lines()[0]}", file=wiring.out)
    return code


async def _until_ready(child: Child, url: str, stop: asyncio.Event) -> None:
    ready = asyncio.create_task(wait_http_ok(child, url, READY_TIMEOUT_S))
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    for task in (ready, stopped):
        if task not in done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if ready in done:
        ready.result()
        print(f"telemetry: ready on {url}", file=sys.stderr)


async def _watch(
    opts: DemoOptions,
    *,
    wiring: Wiring,
    state: DemoState,
    children: tuple[Child, ...],
    stop: asyncio.Event,
    port: int,
    extra: Callable[[], list[str]] = list,
) -> int:
    header = [
        f"Millrace demo   Kafka {wiring.bootstrap}   telemetry http://127.0.0.1:{port}",
        f"{opts.devices} devices x {opts.metrics} metrics, {opts.rate:g} readings/s over "
        f"Kafka and HTTP   windows {opts.windows} (lateness {opts.lateness_ms} ms)",
    ]
    footer = [f"logs in {wiring.run_dir}   Ctrl-C to stop"]
    deadline = None if opts.duration_s is None else state.started + opts.duration_s
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), opts.refresh_s)
        now = time.monotonic()
        if wiring.tty:
            rows = shutil.get_terminal_size().lines
            wiring.out.write(render_screen(state, now, [*header, *extra()], footer, rows))
        else:
            wiring.out.write(summary_line(state, now) + "\n")
        wiring.out.flush()
        for child in children:
            if not child.running:
                print(f"error: {child.failure('exited')}", file=sys.stderr)
                return 1
        if deadline is not None and now >= deadline:
            break
    return 0


async def _shut_down(wiring: Wiring, simulator: Child, telemetry: Child, orders: Child) -> None:
    stops = ((simulator, SIMULATOR_STOP_S), (telemetry, SERVICE_STOP_S), (orders, SERVICE_STOP_S))
    for child, timeout_s in stops:
        if child.pid is None:
            continue
        print(f"{child.name}: stopping (pid {child.pid})", file=sys.stderr, flush=True)
        exit_code = await child.stop(timeout_s)
        print(f"{child.name}: stopped ({exit_label(exit_code)})", file=sys.stderr, flush=True)


def _print_summary(wiring: Wiring, state: DemoState, simulator: Child, ended: float) -> None:
    print(f"summary: {counters_line(state, ended)}", file=wiring.out)
    tail = log_tail(simulator.log, 12).splitlines()
    starts = [i for i, line in enumerate(tail) if line.startswith("simulator:")]
    if starts:
        print("\n".join(tail[starts[-1] :]), file=wiring.out)
    wiring.out.flush()
