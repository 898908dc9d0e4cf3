"""The services (and the simulated shop floor) as child processes: started, SIGKILLed and
started again by the faults, watched for exits nobody asked for."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.config import ChaosConfig
from bench.chaos.source import Source
from millrace.demo.children import Child
from millrace.demo.orders import tokens_env
from millrace.infra.process import free_port, log_tail, spawn_detached

CLI = [sys.executable, "-m", "millrace.cli"]


class SourceChild(Child):
    """A child run from the chosen source tree (``python -m`` puts its cwd first on the path)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path):
        super().__init__(name, argv, env, log)
        self.cwd = cwd

    def start(self) -> None:
        self.proc = spawn_detached(
            self.argv, self.log, cwd=self.cwd, env=self.env, death_signal=signal.SIGTERM
        )


@dataclass
class Fleet:
    """Every child by name, its HTTP port, and what happened to it."""

    children: dict[str, Child] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    """Killed on purpose and not started again yet: not an unexpected exit."""
    unexpected_exits: list[dict[str, object]] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def kill(self, name: str) -> int | None:
        """SIGKILL the child's whole process group; its pid, or None if it was not running."""
        child = self.children[name]
        self.down.add(name)
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return proc.pid

    def start(self, name: str) -> None:
        self.children[name].start()
        self.down.discard(name)

    def watch(self, elapsed_s: float) -> None:
        """Start again any child that exited on its own, and record it."""
        for name, child in self.children.items():
            if name in self.down or child.running or child.proc is None:
                continue
            self.unexpected_exits.append({
                "service": name, "at_s": round(elapsed_s, 1), "code": child.proc.returncode,
                "log_tail": log_tail(child.log, 2)[-800:],
            })  # fmt: skip
            child.start()


def build_fleet(
    cfg: ChaosConfig, run_dir: Path, src: Source, bootstrap: str, database_url: str
) -> Fleet:
    fleet = Fleet()
    local = src.root / "deploy" / "local"
    base = {
        **os.environ,
        **src.env(),
        "PYTHONUNBUFFERED": "1",
        "MILLRACE_KAFKA_BOOTSTRAP": bootstrap,
        "MILLRACE_DATABASE_URL": database_url,
        "MILLRACE_LOG_FORMAT": "json",
    }
    specs: dict[str, dict[str, str]] = {
        "telemetry": {
            "MILLRACE_TELEMETRY_WINDOWS": cfg.windows_spec,
            "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": str(cfg.lateness_ms),
            "MILLRACE_TELEMETRY_BACKFILL_HORIZON_MS": str(cfg.backfill_horizon_ms),
            # No idle clock while the run lasts: during the broker's restart it would shut
            # the partitions by the wall clock, and the readings still on their way would be
            # late by a timing no independent computation can know. The run closes its
            # windows with one reading per device past them instead (drain.py).
            "MILLRACE_TELEMETRY_IDLE_CLOSE_MS": str(3_600_000),
            "MILLRACE_TELEMETRY_DEVICE_IDLE_CLOSE_MS": str(3_600_000),
            "MILLRACE_TELEMETRY_ALARM_RULES": str(local / "alarm-rules.yaml"),
        },
        "orders": {"MILLRACE_ORDERS_TOKENS": tokens_env()},
        "scheduling": {
            "MILLRACE_SCHEDULING_TOKENS": tokens_env(),
            "MILLRACE_SCHEDULING_DURATION_SCALE": f"{cfg.duration_scale:g}",
            "MILLRACE_SCHEDULING_TIME_LIMIT_S": f"{cfg.solver_time_limit_s:g}",
            "MILLRACE_SCHEDULING_REPAIR_S": str(cfg.repair_s),
            "MILLRACE_SCHEDULING_REPLAN_DRIFT_S": "10",
        },
    }
    for name, extra in specs.items():
        port = free_port()
        fleet.ports[name] = port
        env = {**base, **extra, "MILLRACE_HTTP_PORT": str(port)}
        log = run_dir / f"{name}.log"
        fleet.children[name] = SourceChild(name, [*CLI, "run", name], env, log, src.root)
    # The shop floor executes the plan; its machines' telemetry goes over Kafka only, so what
    # reaches the readings topic is decided by producers the run does not kill.
    fleet.children["simulator"] = SourceChild(
        "simulator",
        [*CLI, "simulate", "--fleet", "plant", "--plant", str(local / "plant.yaml"),
         "--transport", "kafka",
         "--sample-interval-ms", "1000", "--seed", str(cfg.seed), "--break-every", "90",
         "--repair", str(cfg.repair_s)],
        base,
        run_dir / "simulator.log",
        src.root,
    )  # fmt: skip
    return fleet


async def stop_all(fleet: Fleet, names: list[str], timeout_s: float) -> None:
    """SIGTERM the named children in order (the simulator first) and wait for each."""
    for name in names:
        fleet.down.add(name)
        await fleet.children[name].stop(timeout_s)
