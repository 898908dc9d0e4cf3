"""One demo run: topics, the services, the simulator and the live view, then a clean stop.

Order matters: the view's consumer pins its positions before anything produces; telemetry is
ready before the simulator sends to its HTTP ingest; orders publishes the plant and scheduling
is ready before the shop floor and the customer start. On the way out the customer and the
simulator stop before the services, so the services' last commits cover everything sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence

from contracts.manifest import TOPICS
from millrace.demo.children import Child, ChildError, exit_label, wait_http_ok
from millrace.demo.feed import Feed
from millrace.demo.orders import OrdersDemo
from millrace.demo.plan import PlanBoard
from millrace.demo.scheduling import DemoClock, SchedulingDemo
from millrace.demo.setup import (
    DemoOptions,
    Wiring,
    child_env,
    header,
    plant_machines,
    telemetry_and_simulator,
)
from millrace.demo.state import DemoState
from millrace.demo.view import counters_line, render_screen, summary_line
from millrace.infra.process import free_port, log_tail, port_open
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

__all__ = ["DemoOptions", "Wiring", "run_demo"]

READY_TIMEOUT_S = 90.0
SIMULATOR_STOP_S = 15.0
SERVICE_STOP_S = 40.0
DEFAULT_HTTP_PORT = 8080
ORDERS_HTTP_PORT = 8081
SCHEDULING_HTTP_PORT = 8082


def _port(preferred: int) -> int:
    """The README's port when it is free, else any free one."""
    return free_port() if port_open(f"127.0.0.1:{preferred}") else preferred


async def run_demo(opts: DemoOptions, wiring: Wiring, stop: asyncio.Event) -> int:
    """Run until ``stop`` is set, ``duration_s`` passes or a child dies; 0 unless a child died."""
    settings = ServiceSettings(kafka_bootstrap=wiring.bootstrap)
    created = await ensure_topics(settings, TOPICS)
    print(
        f"topics: {len(TOPICS)} in the manifest, {len(created)} created (DLQs included)",
        file=sys.stderr,
    )
    port = opts.http_port or _port(DEFAULT_HTTP_PORT)
    telemetry, simulator = telemetry_and_simulator(opts, wiring, port)
    orders_port, scheduling_port = _port(ORDERS_HTTP_PORT), _port(SCHEDULING_HTTP_PORT)
    orders = OrdersDemo(child_env(opts, wiring, orders_port), wiring.run_dir, wiring.bootstrap,
                        orders_port)  # fmt: skip
    scheduling = SchedulingDemo(
        child_env(opts, wiring, scheduling_port), wiring.run_dir, scheduling_port,
        DemoClock(opts.duration_scale, opts.repair_s, opts.plan_id),
    )  # fmt: skip
    feed = Feed(wiring.bootstrap)
    halt = asyncio.Event()
    task: asyncio.Task[None] | None = None
    state: DemoState | None = None
    code = 0
    children = (telemetry, orders.child, scheduling.child, simulator)
    try:
        await feed.start()
        telemetry.start()
        print(f"telemetry: starting (pid {telemetry.pid}, log {telemetry.log})", file=sys.stderr)
        await _until_ready(telemetry, f"http://127.0.0.1:{port}/readyz", stop)
        if not stop.is_set():
            await orders.start(READY_TIMEOUT_S)
        if not stop.is_set():
            await scheduling.start(READY_TIMEOUT_S)
        if not stop.is_set():
            simulator.start()
            orders.start_customer(opts.order_every_s, opts.seed)
            state = DemoState(started=time.monotonic(), board=PlanBoard(plan_id=opts.plan_id))
            task = asyncio.create_task(feed.run(state, halt))
            code = await _watch(
                opts,
                wiring=wiring,
                state=state,
                children=children,
                stop=stop,
                head=header(opts, wiring, port),
                extra=lambda: [*orders.lines(), *scheduling.lines()],
            )
    except ChildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    finally:
        await orders.stop_simulation()
        await scheduling.stop_polling()
        await _shut_down((simulator, telemetry, orders.child, scheduling.child))
        halt.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        await feed.close()
    if state is not None:
        _print_summary(wiring, state, simulator, [*orders.lines()[:1], *scheduling.lines()])
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
    head: Sequence[str],
    extra: Callable[[], list[str]] = list,
) -> int:
    footer = [f"logs in {wiring.run_dir}   Ctrl-C to stop"]
    machines = plant_machines() if opts.fleet == "plant" else []
    deadline = None if opts.duration_s is None else state.started + opts.duration_s
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), opts.refresh_s)
        now = time.monotonic()
        if wiring.tty:
            rows = shutil.get_terminal_size().lines
            top = [*head, *extra()]
            wiring.out.write(render_screen(state, now, top, footer, rows, machines=machines))
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


async def _shut_down(children: Sequence[Child]) -> None:
    """Stop in the given order: the simulator first, then the services."""
    for child in children:
        if child.pid is None:
            continue
        timeout_s = SIMULATOR_STOP_S if child.name == "simulator" else SERVICE_STOP_S
        print(f"{child.name}: stopping (pid {child.pid})", file=sys.stderr, flush=True)
        exit_code = await child.stop(timeout_s)
        print(f"{child.name}: stopped ({exit_label(exit_code)})", file=sys.stderr, flush=True)


def _print_summary(
    wiring: Wiring, state: DemoState, simulator: Child, services: Sequence[str]
) -> None:
    print(f"summary: {counters_line(state, time.monotonic())}", file=wiring.out)
    for line in services:
        print(f"summary: {line}", file=wiring.out)
    if state.board.plan:
        b = state.board
        print(
            f"summary: plan {len(b.plan)} operations, {len(b.completed)} completed, "
            f"{b.moved} moved to another machine",
            file=wiring.out,
        )
    tail = log_tail(simulator.log, 12).splitlines()
    starts = [i for i, line in enumerate(tail) if line.startswith("simulator:")]
    if starts:
        print("\n".join(tail[starts[-1] :]), file=wiring.out)
    wiring.out.flush()
