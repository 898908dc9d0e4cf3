"""What one chaos run does, from ``CHAOS_*`` variables: how long the load runs, the seed that
fixes the load, the poison and the fault schedule, and the services' fast settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "chaos.json"
SERVICES = ("telemetry", "orders", "scheduling")


@dataclass(frozen=True)
class ChaosConfig:
    duration_s: float = 360.0
    """How long the load runs; the faults fall inside it."""
    seed: int = 1
    kills_per_service: int = 10
    kill_pause_s: tuple[float, float] = (1.0, 5.0)
    """A killed service stays down for a random time in this range."""
    server_pause_s: float = 5.0
    """The broker and PostgreSQL stay down this long before they start again."""
    windows_ms: tuple[int, ...] = (10_000, 60_000)
    lateness_ms: int = 2_000
    backfill_horizon_ms: int = 900_000
    """How far a device's clock may trail its partition's newest device (the service's
    default, set on it explicitly so that the check and the service use the same floor)."""
    devices: int = 20
    metrics: int = 3
    tick_s: float = 0.5
    order_every_s: float = 2.0
    cancel_one_in: int = 5
    drain_timeout_s: float = 300.0
    solver_time_limit_s: float = 2.0
    duration_scale: float = 0.01
    repair_s: int = 20
    """Scheduling's expected repair time, as long as the shop floor's breakdowns."""
    source: str = "head"
    """``head``: the children run a snapshot of the last commit; ``worktree``: the tree as is."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ChaosConfig:
        return cls(
            duration_s=float(env.get("CHAOS_DURATION_S", cls.duration_s)),
            seed=int(env.get("CHAOS_SEED", cls.seed)),
            kills_per_service=int(env.get("CHAOS_KILLS", cls.kills_per_service)),
            source=env.get("CHAOS_SOURCE", cls.source),
        )

    @property
    def windows_spec(self) -> str:
        return ",".join(f"{ms // 1000}s" for ms in self.windows_ms)
