"""``millrace demo``: local Kafka + PostgreSQL, topics, the telemetry, orders and scheduling
services, and the simulated plant (its machines' telemetry, a customer placing orders, a shop
floor executing the plan and breaking a machine now and then), shown live until Ctrl-C or
``--duration``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from types import FrameType
from typing import Any

from millrace.demo.children import ChildError
from millrace.demo.infra import Endpoints, bring_up, stack_from_env, tear_down
from millrace.demo.runner import DemoOptions, Wiring, run_demo
from millrace.infra import InfraError
from millrace.infra.paths import state_dir
from shared.durations import parse_duration_ms


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="the whole flow on this machine: Kafka, PostgreSQL, the services, the simulated "
        "plant, live view",
        description=__doc__,
    )
    d = DemoOptions()
    p.add_argument(
        "--fleet",
        choices=("plant", "generic"),
        default=d.fleet,
        help="plant: the sample plant's machines with a shop floor executing the plan "
        "(default); generic: --devices numbered machines at --rate, no shop floor",
    )
    p.add_argument(
        "--devices", type=int, default=d.devices, help=f"generic fleet size ({d.devices})"
    )
    p.add_argument("--metrics", type=int, default=d.metrics, help=f"generic: default {d.metrics}")
    p.add_argument("--rate", type=float, default=d.rate, help="generic: readings/s over the fleet")
    p.add_argument(
        "--duration-scale",
        type=float,
        default=d.duration_scale,
        help=f"routing durations x this in plans (default {d.duration_scale:g}: hours -> minutes)",
    )
    p.add_argument(
        "--break-every",
        type=float,
        default=d.break_every_s,
        metavar="S",
        help=f"break a machine about every S s (0 = never; default {d.break_every_s:g})",
    )
    p.add_argument("--repair", type=float, default=d.repair_s, metavar="S", help="repair time in s")
    p.add_argument(
        "--plan-id",
        default=d.plan_id,
        help="the scheduler's plan, which the shop floor executes (default %(default)s)",
    )
    p.add_argument(
        "--order-every",
        type=float,
        default=d.order_every_s,
        metavar="S",
        help=f"the customer places an order every S s (default {d.order_every_s:g})",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--windows", default=d.windows, help=f"window sizes (default {d.windows})")
    p.add_argument("--lateness-ms", type=int, default=d.lateness_ms, help="allowed lateness")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S s")
    p.add_argument(
        "--http-port",
        type=int,
        default=0,
        help="telemetry port (default 8080, or a free one when taken)",
    )
    p.add_argument(
        "--keep-infra", action="store_true", help="leave Kafka/PostgreSQL running at the end"
    )
    p.set_defaults(func=run)


def options_from(args: argparse.Namespace) -> DemoOptions:
    """Validate what a child would only reject after start-up."""
    for part in args.windows.split(","):
        parse_duration_ms(part)
    if args.devices < 1 or args.metrics < 1 or args.rate <= 0:
        raise ValueError("--devices, --metrics and --rate must be positive")
    if args.duration is not None and args.duration <= 0:
        raise ValueError("--duration must be positive")
    if args.duration_scale <= 0 or args.break_every < 0 or args.repair <= 0:
        raise ValueError("--duration-scale and --repair must be positive, --break-every >= 0")
    if args.order_every <= 0:
        raise ValueError("--order-every must be positive")
    return DemoOptions(
        devices=args.devices,
        metrics=args.metrics,
        rate=args.rate,
        seed=args.seed,
        windows=args.windows,
        lateness_ms=args.lateness_ms,
        duration_s=args.duration,
        http_port=args.http_port,
        fleet=args.fleet,
        duration_scale=args.duration_scale,
        break_every_s=args.break_every,
        repair_s=args.repair,
        order_every_s=args.order_every,
        plan_id=args.plan_id,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _main(opts: DemoOptions, wiring: Wiring) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_demo(opts, wiring, stop)


def run(args: argparse.Namespace) -> int:
    try:
        opts = options_from(args)
    except ValueError as exc:
        print(f"millrace demo: {exc}", file=sys.stderr)
        return 2
    # Until the event loop takes over, SIGTERM unwinds like Ctrl-C so the finally runs.
    signal.signal(signal.SIGTERM, _interrupt)
    endpoints = Endpoints()
    code = 130
    try:
        bring_up(endpoints, stack_from_env(os.environ))
        for note in endpoints.notes:
            print(note, file=sys.stderr)
        wiring = Wiring(
            bootstrap=endpoints.bootstrap,
            database_url=endpoints.database_url,
            run_dir=state_dir() / "demo",
            out=sys.stdout,
            tty=sys.stdout.isatty(),
        )
        code = asyncio.run(_main(opts, wiring))
    except (InfraError, ChildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        tear_down(endpoints, args.keep_infra)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return code
