"""Seeded, pure signal models of machine tools.

A :class:`Device` keeps the hidden physical state of one machine (spindle on/off cycle, speed
set-point, heat, a slow thermal drift) and advances it by a nominal time step. Its metrics are
read from that state with per-metric noise. Nothing here reads a clock: values depend only on
the seed, the device index and how many steps were taken, so a run can be replayed exactly.

Each device draws from its own ``random.Random`` seeded with a string, which Python hashes with
SHA-512, so a seed gives the same fleet in every process whatever ``PYTHONHASHSEED`` is.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

MACHINE_TYPES = ("press", "mill", "lathe", "grinder")

BASE_METRICS = (
    "spindle_temp_c",
    "vibration_mm_s",
    "spindle_rpm",
    "power_kw",
    "coolant_flow_l_min",
    "motor_current_a",
    "hydraulic_pressure_bar",
    "axis_load_pct",
    "ambient_temp_c",
)


@dataclass(frozen=True, slots=True)
class Profile:
    """What distinguishes one machine type: its speed range and duty cycle."""

    rpm_min: int
    rpm_max: int
    on_s: tuple[float, float]
    off_s: tuple[float, float]
    kw_per_krpm: float


PROFILES: dict[str, Profile] = {
    "press": Profile(200, 1_200, (30.0, 120.0), (10.0, 40.0), 9.0),
    "mill": Profile(2_000, 12_000, (40.0, 180.0), (10.0, 60.0), 1.4),
    "lathe": Profile(500, 4_000, (30.0, 150.0), (5.0, 45.0), 3.0),
    "grinder": Profile(1_500, 3_600, (20.0, 90.0), (5.0, 30.0), 2.5),
}


def device_id(index: int) -> str:
    """``press-0001``, ``mill-0002``, ...: the machine type cycles with the index."""
    return f"{MACHINE_TYPES[index % len(MACHINE_TYPES)]}-{index + 1:04d}"


def metric_names(count: int) -> list[str]:
    """The first ``count`` metrics; past the catalogue, a second sensor of each kind (``_2``)."""
    n = len(BASE_METRICS)
    return [
        BASE_METRICS[i % n] if i < n else f"{BASE_METRICS[i % n]}_{i // n + 1}"
        for i in range(count)
    ]


def _approach(current: float, target: float, dt_s: float, tau_s: float) -> float:
    """First-order lag, exact for any step size, so the signal is stable at every rate."""
    return target + (current - target) * math.exp(-dt_s / tau_s)


class Device:
    """One simulated machine. Call :meth:`step` once per sample, then :meth:`read` each metric."""

    def __init__(self, seed: int, index: int) -> None:
        self.id = device_id(index)
        self.profile = PROFILES[self.id.split("-", 1)[0]]
        self._rng = random.Random(f"millrace-sim:{seed}:{index}")
        rng = self._rng
        self.ambient_c = 20.0 + rng.uniform(0.0, 4.0)
        self.drift_c = 0.0
        self.running = rng.random() < 0.7
        self.remaining_s = rng.uniform(*(self.profile.on_s if self.running else self.profile.off_s))
        self.setpoint_rpm = self._new_setpoint()
        self.rpm = self.setpoint_rpm if self.running else 0.0
        self.temp_c = self.ambient_c + (35.0 if self.running else 5.0)
        self.spike = False
        self.load_pct = 50.0 if self.running else 0.0

    def _new_setpoint(self) -> float:
        p = self.profile
        return float(round(self._rng.uniform(p.rpm_min, p.rpm_max), -1))

    def step(self, dt_s: float) -> None:
        """Advance the hidden state by ``dt_s`` seconds of simulated time."""
        rng, p = self._rng, self.profile
        self.remaining_s -= dt_s
        if self.remaining_s <= 0:
            self.running = not self.running
            self.remaining_s = rng.uniform(*(p.on_s if self.running else p.off_s))
            if self.running:
                self.setpoint_rpm = self._new_setpoint()
        self.rpm = self.setpoint_rpm if self.running else 0.0
        # Thermal drift: a mean-reverting random walk of a few degrees over minutes.
        self.drift_c = _approach(self.drift_c, 0.0, dt_s, 600.0)
        self.drift_c += rng.gauss(0.0, 0.05 * math.sqrt(dt_s))
        heat = 20.0 + 25.0 * (self.rpm / p.rpm_max) if self.running else 2.0
        self.temp_c = _approach(self.temp_c, self.ambient_c + heat, dt_s, 240.0)
        self.spike = rng.random() < 1.0 - math.exp(-dt_s / 60.0)
        target_load = rng.uniform(30.0, 85.0) if self.running else 0.0
        self.load_pct = _approach(self.load_pct, target_load, dt_s, 20.0)

    def power_kw(self) -> float:
        return 0.8 + self.profile.kw_per_krpm * self.rpm / 1000.0 * (0.5 + self.load_pct / 100.0)

    def read(self, metric_index: int) -> float:
        """The current value of metric ``metric_index`` (see :func:`metric_names`), with noise."""
        kind = BASE_METRICS[metric_index % len(BASE_METRICS)]
        return _MODELS[kind](self, self._rng)


def _temp(d: Device, r: random.Random) -> float:
    return round(d.temp_c + d.drift_c + r.gauss(0.0, 0.15), 2)


def _vibration(d: Device, r: random.Random) -> float:
    base = (1.2 + 2.0 * d.rpm / d.profile.rpm_max) if d.running else 0.08
    value = abs(r.gauss(base, base * 0.15))
    if d.spike:
        value += r.uniform(6.0, 14.0)
    return round(value, 3)


def _rpm(d: Device, r: random.Random) -> float:
    if not d.running:
        return 0.0
    return round(d.rpm * (1.0 + r.gauss(0.0, 0.004)), 1)


def _power(d: Device, r: random.Random) -> float:
    return round(max(0.0, d.power_kw() + r.gauss(0.0, 0.05)), 2)


def _coolant(d: Device, r: random.Random) -> float:
    return round(max(0.0, r.gauss(16.0, 0.6)), 2) if d.running else 0.0


def _current(d: Device, r: random.Random) -> float:
    # Three-phase 400 V at a power factor of 0.85.
    amps = d.power_kw() * 1000.0 / (math.sqrt(3) * 400.0 * 0.85)
    return round(max(0.0, amps + r.gauss(0.0, 0.05)), 2)


def _pressure(d: Device, r: random.Random) -> float:
    return round(150.0 + (4.0 if d.running else 0.0) + r.gauss(0.0, 0.8), 2)


def _load(d: Device, r: random.Random) -> float:
    return round(min(100.0, max(0.0, d.load_pct + r.gauss(0.0, 1.0))), 1) if d.running else 0.0


def _ambient(d: Device, r: random.Random) -> float:
    return round(d.ambient_c + d.drift_c * 0.2 + r.gauss(0.0, 0.05), 2)


_MODELS: dict[str, Callable[[Device, random.Random], float]] = {
    "spindle_temp_c": _temp,
    "vibration_mm_s": _vibration,
    "spindle_rpm": _rpm,
    "power_kw": _power,
    "coolant_flow_l_min": _coolant,
    "motor_current_a": _current,
    "hydraulic_pressure_bar": _pressure,
    "axis_load_pct": _load,
    "ambient_temp_c": _ambient,
}
