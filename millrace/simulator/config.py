"""What one simulation run does, validated up front so a bad flag fails before anything is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Transport = Literal["kafka", "http", "both"]

READINGS_TOPIC = "telemetry.readings.v1"
DEFAULT_HTTP_URL = "http://127.0.0.1:8080/v1/readings"


class ConfigError(ValueError):
    """The simulation is misconfigured."""


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """One run of the simulator.

    ``rate`` is readings per second over the whole fleet and fixes the sample spacing of the
    timeline; ``rate=0`` sends as fast as possible, with each device sampling every
    ``sample_interval_ms`` of simulated time. ``start_ms`` pins the timeline (event times follow
    the schedule, not the wall clock), which is what makes a run reproducible.
    ``batch=None`` sends one message per device per tick (split at the contract's limit of
    10000 readings); ``batch=K`` sends messages of K readings per device, filled across ticks
    (the last one of a run may be shorter).
    """

    devices: int = 10
    metrics: int = 3
    rate: float = 1_000.0
    seed: int = 1
    batch: int | None = None
    tick_ms: int = 100
    duration_s: float | None = None
    count: int | None = None
    start_ms: int | None = None
    sample_interval_ms: int = 1_000
    transport: Transport = "kafka"
    topic: str = READINGS_TOPIC
    http_url: str = DEFAULT_HTTP_URL
    token: str | None = None
    http_concurrency: int = 8
    max_attempts: int = 5
    record: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.devices >= 1, "devices must be >= 1"),
            (self.metrics >= 1, "metrics must be >= 1"),
            (self.rate >= 0, "rate must be >= 0 (0 = as fast as possible)"),
            (self.batch is None or 1 <= self.batch <= 10_000, "batch must be in 1..10000"),
            (1 <= self.tick_ms <= 60_000, "tick_ms must be in 1..60000"),
            (self.duration_s is None or self.duration_s > 0, "duration must be > 0"),
            (self.count is None or self.count >= 1, "count must be >= 1"),
            (self.start_ms is None or self.start_ms >= 0, "start_ms must be >= 0"),
            (self.sample_interval_ms >= 1, "sample_interval_ms must be >= 1"),
            (self.transport in ("kafka", "http", "both"), "transport: kafka, http or both"),
            (self.http_concurrency >= 1, "http_concurrency must be >= 1"),
            (self.max_attempts >= 1, "max_attempts must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def paced(self) -> bool:
        return self.rate > 0

    def uses(self, transport: Literal["kafka", "http"]) -> bool:
        return self.transport in (transport, "both")
