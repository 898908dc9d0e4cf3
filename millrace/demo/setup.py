"""What a demo run is made of: the user's options, where it runs, and the telemetry service and
simulator children built from them.

With the plant fleet (the default) the simulator sends the telemetry of the sample plant's
machines and runs the shop floor that executes the scheduling service's plan; the generic
fleet is the numbered machines of the telemetry benchmarks, with no shop floor.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from millrace.demo.children import Child
from millrace.masterdata.plant import load_plant

ROOT = Path(__file__).resolve().parents[2]
# The sample rules fit the simulator's signals, so the demo shows alarms and machine states.
ALARM_RULES = ROOT / "deploy" / "local" / "alarm-rules.yaml"
PLANT = ROOT / "deploy" / "local" / "plant.yaml"
Fleet = Literal["plant", "generic"]


@dataclass(frozen=True)
class DemoOptions:
    """What the user chose on the command line; defaults show windows within a minute and a
    breakdown within a few."""

    devices: int = 20
    metrics: int = 3
    rate: float = 120.0
    seed: int = 1
    windows: str = "5s,60s"
    lateness_ms: int = 2_000
    duration_s: float | None = None
    http_port: int = 0
    refresh_s: float = 1.0
    fleet: Fleet = "plant"
    duration_scale: float = 0.01
    break_every_s: float = 120.0
    repair_s: float = 60.0
    order_every_s: float = 20.0
    plan_id: str = "plant"


@dataclass(frozen=True)
class Wiring:
    """Where the demo runs: endpoints, its log dir, and how it talks to the user."""

    bootstrap: str
    database_url: str
    run_dir: Path
    out: TextIO
    tty: bool


def plant_machines() -> list[str]:
    return [m.machine_id for m in load_plant(PLANT).machines]


def child_env(opts: DemoOptions, wiring: Wiring, port: int) -> dict[str, str]:
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


def _fleet_args(opts: DemoOptions) -> list[str]:
    if opts.fleet == "generic":
        return ["--devices", str(opts.devices), "--metrics", str(opts.metrics),
                "--rate", str(opts.rate)]  # fmt: skip
    return [
        "--fleet", "plant", "--plant", str(PLANT), "--sample-interval-ms", "1000",
        "--break-every", f"{opts.break_every_s:g}", "--repair", f"{opts.repair_s:g}",
        "--plan-id", opts.plan_id,
    ]  # fmt: skip


def telemetry_and_simulator(opts: DemoOptions, wiring: Wiring, port: int) -> tuple[Child, Child]:
    env = child_env(opts, wiring, port)
    cli = [sys.executable, "-m", "millrace.cli"]
    telemetry = Child(
        "telemetry",
        [*cli, "run", "telemetry"],
        {**env, "MILLRACE_TELEMETRY_ALARM_RULES": str(ALARM_RULES)},
        wiring.run_dir / "telemetry.log",
    )
    simulator = Child(
        "simulator",
        [*cli, "simulate", *_fleet_args(opts), "--seed", str(opts.seed), "--transport", "both",
         "--http-url", f"http://127.0.0.1:{port}/v1/readings"],
        env,
        wiring.run_dir / "simulator.log",
    )  # fmt: skip
    return telemetry, simulator


def header(opts: DemoOptions, wiring: Wiring, port: int) -> list[str]:
    """The top of the live view: what runs where, and what the simulator does."""
    first = f"Millrace demo   Kafka {wiring.bootstrap}   telemetry http://127.0.0.1:{port}"
    windows = f"windows {opts.windows} (lateness {opts.lateness_ms} ms)"
    if opts.fleet == "generic":
        return [
            first,
            f"{opts.devices} devices x {opts.metrics} metrics, {opts.rate:g} readings/s over "
            f"Kafka and HTTP   {windows}",
        ]
    return [
        first,
        f"the plant's {len(plant_machines())} machines, every metric each second over Kafka "
        f"and HTTP   {windows}",
        f"shop floor: executes the plan at durations x{opts.duration_scale:g}, breaks a machine "
        f"about every {opts.break_every_s:g} s for {opts.repair_s:g} s (it goes silent -> DOWN)",
    ]
