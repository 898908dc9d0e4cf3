"""``millrace simulate``: a fleet of machines sending telemetry over Kafka and/or HTTP.

``--fleet plant`` simulates the machines of a plant file instead of a generic fleet, and with
them a shop floor that executes the published plan and now and then breaks a machine.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from contracts.manifest import topic as topic_spec
from millrace.masterdata.plant import PlantError
from millrace.simulator import ConfigError, SimulatorConfig, run_simulation
from millrace.simulator.config import DEFAULT_HTTP_URL, READINGS_TOPIC
from millrace.simulator.metrics import serve_metrics
from millrace.simulator.plant_loop import PlantLoop, run_plant_loop
from shared.kafka import ensure_topics
from shared.logging import configure_logging
from shared.settings import ServiceSettings, load_settings

TOKEN_ENV = "MILLRACE_SIMULATOR_TOKEN"  # noqa: S105 - the variable's name, not a secret
ORDERS_TOKEN_ENV = "MILLRACE_SIMULATOR_ORDERS_TOKEN"  # noqa: S105 - a variable's name
SAMPLE_PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="simulate machines sending telemetry.readings.v1",
        description="Send seeded, reproducible machine telemetry until --count, --duration or "
        "Ctrl-C. Kafka settings come from MILLRACE_* variables (MILLRACE_KAFKA_BOOTSTRAP, ...).",
    )
    p.add_argument("--devices", type=int, default=10, help="fleet size (default 10)")
    p.add_argument("--metrics", type=int, default=3, help="metrics per device (default 3)")
    p.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="readings per second over the fleet; 0 = as fast as possible",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        metavar="K",
        help="K readings per message (default: one message per device per tick)",
    )
    p.add_argument("--tick-ms", type=int, default=100, help="pacing tick (default 100 ms)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    p.add_argument("--count", type=int, default=None, metavar="N", help="stop after N readings")
    p.add_argument(
        "--start-ms",
        type=int,
        default=None,
        help="fixed timeline: event times start here and follow the schedule",
    )
    p.add_argument(
        "--sample-interval-ms",
        type=int,
        default=1000,
        help="per-device sample spacing of the timeline when --rate 0",
    )
    p.add_argument(
        "--transport",
        choices=("kafka", "http", "both"),
        default="kafka",
        help="both: even devices over Kafka, odd ones over HTTP",
    )
    p.add_argument("--topic", default=READINGS_TOPIC)
    p.add_argument("--ensure-topic", action="store_true", help="create the topic if missing")
    p.add_argument("--http-url", default=DEFAULT_HTTP_URL)
    p.add_argument("--token", default=None, help=f"bearer token for HTTP (or ${TOKEN_ENV})")
    p.add_argument("--http-concurrency", type=int, default=8)
    p.add_argument("--max-attempts", type=int, default=5, help="send attempts per batch")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve /metrics and /healthz on this port (0 = off)",
    )
    plant = p.add_argument_group("plant fleet (--fleet plant)")
    plant.add_argument(
        "--fleet",
        choices=("generic", "plant"),
        default="generic",
        help="generic: --devices numbered machines; plant: the machines of --plant, "
        "sampled every --sample-interval-ms, with a shop floor executing the plan",
    )
    plant.add_argument("--plant", type=Path, default=SAMPLE_PLANT, help="plant file")
    plant.add_argument(
        "--no-shop-floor", action="store_true", help="telemetry only, every machine idle"
    )
    plant.add_argument(
        "--break-every",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="break a machine about this often (0 = never; default 120)",
    )
    plant.add_argument(
        "--repair", type=float, default=60.0, metavar="SECONDS", help="repair time (default 60)"
    )
    plant.add_argument(
        "--orders-url",
        default=None,
        help="also place an order every --order-every s at this orders API "
        f"(bearer token from ${ORDERS_TOKEN_ENV})",
    )
    plant.add_argument("--order-every", type=float, default=20.0, metavar="SECONDS")
    plant.add_argument(
        "--plan-id",
        default=None,
        help="execute only this plan's operations (MILLRACE_SCHEDULING_PLAN_ID; default: any)",
    )
    p.set_defaults(func=run)


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    return SimulatorConfig(
        devices=args.devices,
        metrics=args.metrics,
        rate=args.rate,
        seed=args.seed,
        batch=args.batch,
        tick_ms=args.tick_ms,
        duration_s=args.duration,
        count=args.count,
        start_ms=args.start_ms,
        sample_interval_ms=args.sample_interval_ms,
        transport=args.transport,
        topic=args.topic,
        http_url=args.http_url,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        http_concurrency=args.http_concurrency,
        max_attempts=args.max_attempts,
    )


async def _main(cfg: SimulatorConfig, settings: ServiceSettings, ensure: bool) -> int:
    if ensure and cfg.uses("kafka"):
        # A custom topic name gets the readings topic's partitions and retention.
        await ensure_topics(settings, [replace(topic_spec(READINGS_TOPIC), name=cfg.topic)])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    report = await run_simulation(cfg, kafka_settings=settings, stop=stop)
    print(report.summary(), file=sys.stderr)
    return 0 if report.total_sent == report.readings_generated else 1


async def _plant_main(
    args: argparse.Namespace, cfg: SimulatorConfig, settings: ServiceSettings
) -> int:
    loop_cfg = PlantLoop(
        plant=args.plant,
        shop_floor=not args.no_shop_floor,
        break_every_s=args.break_every,
        repair_s=args.repair,
        orders_url=args.orders_url,
        orders_token=os.environ.get(ORDERS_TOKEN_ENV),
        order_every_s=args.order_every,
        plan_id=args.plan_id,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return await run_plant_loop(loop_cfg, cfg, settings, stop)


def _check_plant_flags(args: argparse.Namespace) -> None:
    if args.break_every < 0 or args.repair <= 0 or args.order_every <= 0:
        raise ConfigError("--break-every must be >= 0, --repair and --order-every > 0")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from(args)
        _check_plant_flags(args)
    except ConfigError as exc:
        print(f"millrace simulate: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(ServiceSettings)
    configure_logging("simulator", settings.log_level, settings.log_format)
    # httpx logs every request at INFO: thousands of lines a minute with --transport http.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server = serve_metrics(args.metrics_port, settings.http_host) if args.metrics_port else None
    try:
        if args.fleet == "plant":
            return asyncio.run(_plant_main(args, cfg, settings))
        return asyncio.run(_main(cfg, settings, args.ensure_topic))
    except PlantError as exc:
        print(f"millrace simulate: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.shutdown()
