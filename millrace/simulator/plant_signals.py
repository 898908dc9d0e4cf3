"""Seeded signal models of the sample plant's metrics (``deploy/local/plant.yaml``).

A metric has a level while the machine works and another while it waits, reached through a
first-order lag (instant for speeds and currents, slow for temperatures), plus noise. The
machine-state rules of ``deploy/local/alarm-rules.yaml`` read RUNNING from these levels, so
the thresholds there sit between the two. A metric the catalogue doesn't know reads 100 while
working and 0 while idle, which a user's rule can still tell apart.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Level:
    """``working`` / ``idle`` levels, lag time constant (0 = instant) and noise (std dev)."""

    working: float
    idle: float
    noise: float
    tau_s: float = 0.0
    digits: int = 2


CATALOGUE: dict[str, Level] = {
    "blade_speed_rpm": Level(1_450.0, 0.0, 8.0, digits=1),
    "motor_current_a": Level(11.5, 0.4, 0.25),
    "spindle_temp_c": Level(48.0, 26.0, 0.15, tau_s=60.0),
    "spindle_speed_rpm": Level(8_000.0, 0.0, 30.0, digits=1),
    "vibration_mm_s": Level(2.2, 0.08, 0.2, digits=3),
    "pressure_bar": Level(180.0, 12.0, 1.5),
    "oil_temp_c": Level(55.0, 32.0, 0.2, tau_s=90.0),
    "arc_current_a": Level(160.0, 0.0, 4.0, digits=1),
    "wire_feed_m_min": Level(8.5, 0.0, 0.2),
    "oven_temp_c": Level(190.0, 90.0, 0.8, tau_s=10.0, digits=1),
    "booth_humidity_pct": Level(38.0, 45.0, 0.8, tau_s=30.0, digits=1),
    "laser_power_w": Level(1_800.0, 0.0, 20.0, digits=0),
    "torque_nm": Level(35.0, 0.0, 1.5),
    "cycle_time_s": Level(42.0, 0.0, 1.0, digits=1),
}
UNKNOWN = Level(100.0, 0.0, 1.0)


def level(metric: str) -> Level:
    return CATALOGUE.get(metric, UNKNOWN)


class PlantMachine:
    """One machine's signals; :meth:`read` advances each metric to ``now`` and samples it."""

    def __init__(self, seed: int, machine_id: str, metrics: tuple[str, ...]) -> None:
        self.id = machine_id
        self.metrics = metrics
        # A string seed is hashed with SHA-512: the same signals whatever PYTHONHASHSEED is.
        self._rng = random.Random(f"millrace-plant:{seed}:{machine_id}")
        self._values = {m: level(m).idle for m in metrics}

    def read(self, working: bool, dt_s: float) -> list[tuple[str, float]]:
        """Every metric after ``dt_s`` seconds spent ``working`` (or idle), with noise."""
        out: list[tuple[str, float]] = []
        for metric in self.metrics:
            spec = level(metric)
            target = spec.working if working else spec.idle
            current = self._values[metric]
            if spec.tau_s > 0:
                current = target + (current - target) * math.exp(-dt_s / spec.tau_s)
            else:
                current = target
            self._values[metric] = current
            noisy = current + self._rng.gauss(0.0, spec.noise) if current else 0.0
            out.append((metric, round(max(0.0, noisy), spec.digits)))
        return out
