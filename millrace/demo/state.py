"""What the live view shows, accumulated from consumed records; pure and clock-injected."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from millrace.demo.plan import PlanBoard


@dataclass(frozen=True, slots=True)
class Window:
    """One ``telemetry.aggregates.v1`` record, as the demo shows it."""

    device_id: str
    metric: str
    window_start: int
    window_end: int
    count: int
    mean: float
    min: float
    max: float
    last: float

    @property
    def size_ms(self) -> int:
        return self.window_end - self.window_start

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Window:
        """Read the contract's fields, ignoring any others (a tolerant reader); a missing or
        mistyped field raises ``KeyError``/``ValueError``/``TypeError``."""
        return cls(
            device_id=str(data["device_id"]),
            metric=str(data["metric"]),
            window_start=int(data["window_start"]),
            window_end=int(data["window_end"]),
            count=int(data["count"]),
            mean=float(data["mean"]),
            min=float(data["min"]),
            max=float(data["max"]),
            last=float(data["last"]),
        )


class RateMeter:
    """Events per second over the last ``span_s`` seconds.

    Before ``span_s`` has passed since the first event, the rate is over the time elapsed
    since ``origin``, so the first seconds don't read as a slow start.
    """

    def __init__(self, origin: float, span_s: float = 5.0) -> None:
        self.origin = origin
        self.span_s = span_s
        self._events: deque[tuple[float, int]] = deque()

    def add(self, now: float, n: int = 1) -> None:
        self._events.append((now, n))
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        span = min(self.span_s, now - self.origin)
        if span <= 0:
            return 0.0
        return sum(n for t, n in self._events if t <= now) / span

    def _trim(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.span_s:
            self._events.popleft()


@dataclass
class DemoState:
    """Counters since the demo started and the latest window of each device."""

    started: float
    readings: int = 0
    messages: int = 0
    windows: int = 0
    dlq: int = 0
    undecodable: int = 0
    devices: set[str] = field(default_factory=set)
    latest: dict[str, Window] = field(default_factory=dict)
    windows_by_size: dict[int, int] = field(default_factory=dict)
    alarms_raised: int = 0
    active_alarms: set[tuple[str, str]] = field(default_factory=set)
    machine_states: dict[str, str] = field(default_factory=dict)
    board: PlanBoard = field(default_factory=PlanBoard)
    oee: dict[str, float | None] = field(default_factory=dict)
    meter: RateMeter = field(init=False)

    def __post_init__(self) -> None:
        self.meter = RateMeter(self.started)

    def record_batch(self, device_id: str, size: int, now: float) -> None:
        """One ``telemetry.readings.v1`` message of ``size`` readings was seen."""
        self.messages += 1
        self.readings += size
        self.devices.add(device_id)
        self.meter.add(now, size)

    def record_window(self, window: Window) -> None:
        """Keep the device's most recent window; a shorter window wins a tie at the same end,
        so the table keeps moving at the pace of the smallest window size."""
        self.windows += 1
        self.windows_by_size[window.size_ms] = self.windows_by_size.get(window.size_ms, 0) + 1
        current = self.latest.get(window.device_id)
        if current is None or (window.window_end, -window.size_ms) >= (
            current.window_end,
            -current.size_ms,
        ):
            self.latest[window.device_id] = window

    def record_dlq(self, n: int = 1) -> None:
        self.dlq += n

    def record_alarm(self, data: Mapping[str, Any]) -> None:
        """One ``telemetry.alarms.v1`` event: raised or cleared, per (device, rule)."""
        key = (str(data["device_id"]), str(data["rule"]))
        if data["state"] == "raised":
            self.alarms_raised += 1
            self.active_alarms.add(key)
        else:
            self.active_alarms.discard(key)

    def record_machine_state(self, data: Mapping[str, Any]) -> None:
        """One ``telemetry.machine-states.v1`` event: the machine's current state."""
        self.machine_states[str(data["machine_id"])] = str(data["state"])

    def record_oee(self, data: Mapping[str, Any]) -> None:
        """One ``scheduling.oee-reported.v1`` event: the machine's OEE of its latest period
        (None when a factor could not be measured, e.g. nothing completed in it)."""
        value = data.get("oee")
        self.oee[str(data["machine_id"])] = None if value is None else float(value)

    def states_summary(self) -> str:
        """``RUNNING 12, IDLE 6`` over the machines whose state was published."""
        counts: dict[str, int] = {}
        for state in self.machine_states.values():
            counts[state] = counts.get(state, 0) + 1
        return ", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none yet"

    def readings_per_s(self, now: float) -> float:
        return self.meter.rate(now)
