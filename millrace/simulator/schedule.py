"""The simulated timeline: which samples fall in which tick, and when each one happened.

Samples are dealt round-robin over the fleet: global sample ``s`` belongs to device
``s % devices`` and is that device's sample number ``s // devices``; it happens ``s * spacing``
milliseconds after the start. Spacing is an exact :class:`~fractions.Fraction`, so no rounding
accumulates: after ten seconds at 2000 readings/s exactly 20000 readings are due, whatever the
tick size. Tick ``j`` holds the samples whose time falls in ``[j * tick, (j + 1) * tick)`` and is
emitted once its end is reached.
"""

from __future__ import annotations

import math
from fractions import Fraction

from millrace.simulator.config import SimulatorConfig


def _exact(value: float) -> Fraction:
    return Fraction(repr(value))


class Schedule:
    """Pure arithmetic over the timeline of one :class:`SimulatorConfig`."""

    def __init__(self, cfg: SimulatorConfig) -> None:
        self.devices = cfg.devices
        self.metrics = cfg.metrics
        self.tick_ms = cfg.tick_ms
        if cfg.rate > 0:
            self.spacing_ms = Fraction(cfg.metrics * 1000) / _exact(cfg.rate)
        else:
            self.spacing_ms = Fraction(cfg.sample_interval_ms, cfg.devices)
        limits: list[int] = []
        if cfg.count is not None:
            limits.append(cfg.count)
        if cfg.duration_s is not None:
            samples = math.ceil(_exact(cfg.duration_s) * 1000 / self.spacing_ms)
            limits.append(samples * cfg.metrics)
        self.limit_readings: int | None = min(limits) if limits else None

    @property
    def device_period_s(self) -> float:
        """Simulated seconds between two samples of one device: the models' time step."""
        return float(self.spacing_ms * self.devices / 1000)

    @property
    def limit_samples(self) -> int | None:
        if self.limit_readings is None:
            return None
        return math.ceil(self.limit_readings / self.metrics)

    def tick_samples(self, tick: int) -> range:
        """Global sample indices due in ``tick``, cut at the run's limit."""
        first = math.ceil(tick * self.tick_ms / self.spacing_ms)
        end = math.ceil((tick + 1) * self.tick_ms / self.spacing_ms)
        if self.limit_samples is not None:
            end = min(end, self.limit_samples)
        return range(first, max(first, end))

    def metrics_of(self, sample: int) -> int:
        """How many of the sample's metrics to emit (fewer only for the very last, with --count)."""
        if self.limit_readings is None:
            return self.metrics
        return max(0, min(self.metrics, self.limit_readings - sample * self.metrics))

    def is_last_tick(self, tick: int) -> bool:
        limit = self.limit_samples
        return limit is not None and self.tick_samples(tick).stop >= limit

    def offset_ms(self, sample: int) -> int:
        """Milliseconds from the start of the timeline to ``sample``."""
        return math.floor(sample * self.spacing_ms)

    def lag_ms(self, sample: int, tick: int) -> int:
        """How long before the end of ``tick`` the sample happened (to back-date wall-clock ts)."""
        return math.floor((tick + 1) * self.tick_ms - sample * self.spacing_ms)

    def tick_end_s(self, tick: int) -> float:
        """Seconds after the start at which ``tick`` is due; the pacer sleeps until then."""
        return (tick + 1) * self.tick_ms / 1000.0

    def readings_in(self, ticks: range) -> int:
        """Readings due over ``ticks``; pacing tests use it to show that nothing drifts."""
        return sum(self.metrics_of(s) for t in ticks for s in self.tick_samples(t))
