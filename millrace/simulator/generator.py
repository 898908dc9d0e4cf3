"""Turns the timeline into ``telemetry.readings.v1`` messages, one device's batch at a time.

The builder never reads a clock: the caller says which tick to build and, in live mode, the wall
clock at emission. Given the same config (seed, fleet, rate, start) it yields the same messages,
which is what lets tests replay a run and compute its windows independently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from millrace.simulator.config import ConfigError, SimulatorConfig
from millrace.simulator.schedule import Schedule
from millrace.simulator.signals import Device, metric_names

MAX_READINGS_PER_MESSAGE = 10_000  # the contract's limit

Batch = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One batch for one device, and the fleet index that decides its transport."""

    device_index: int
    device_id: str
    batch: Batch

    @property
    def size(self) -> int:
        return len(self.batch["readings"])


class BatchBuilder:
    """Steps the device models through the schedule and groups their readings into batches."""

    def __init__(self, cfg: SimulatorConfig) -> None:
        self.cfg = cfg
        self.schedule = Schedule(cfg)
        self.devices = [Device(cfg.seed, i) for i in range(cfg.devices)]
        self.metrics = metric_names(cfg.metrics)
        self._dt_s = self.schedule.device_period_s
        self._pending: list[list[dict[str, Any]]] = [[] for _ in range(cfg.devices)]

    def tick(self, tick: int, now_ms: int | None = None) -> list[Message]:
        """The messages of ``tick``.

        With a fixed timeline (``start_ms``) a reading's ts follows the schedule; otherwise it is
        ``now_ms`` back-dated by how long before the tick's end the sample fell, so samples of one
        tick keep distinct, ordered times.
        """
        schedule, start = self.schedule, self.cfg.start_ms
        if start is None and now_ms is None:
            raise ConfigError("a live timeline needs the wall clock at emission (now_ms)")
        touched: list[int] = []
        for sample in schedule.tick_samples(tick):
            index = sample % self.cfg.devices
            device = self.devices[index]
            device.step(self._dt_s)
            if start is not None:
                ts = start + schedule.offset_ms(sample)
            else:
                assert now_ms is not None
                ts = now_ms - schedule.lag_ms(sample, tick)
            pending = self._pending[index]
            if not pending:
                touched.append(index)
            pending.extend(
                {"metric": self.metrics[m], "ts": ts, "value": device.read(m)}
                for m in range(schedule.metrics_of(sample))
            )
        return self._take(sorted(touched) if self.cfg.batch is None else range(self.cfg.devices))

    def flush(self) -> list[Message]:
        """What is still buffered (only with ``batch=K``): send it when the run stops."""
        out: list[Message] = []
        for index, pending in enumerate(self._pending):
            out.extend(self._chunks(index, pending, MAX_READINGS_PER_MESSAGE))
            pending.clear()
        return out

    def _take(self, indices: Iterable[int]) -> list[Message]:
        out: list[Message] = []
        for index in indices:
            pending = self._pending[index]
            if self.cfg.batch is None:
                out.extend(self._chunks(index, pending, MAX_READINGS_PER_MESSAGE))
                pending.clear()
                continue
            full = len(pending) - len(pending) % self.cfg.batch
            if full:
                out.extend(self._chunks(index, pending[:full], self.cfg.batch))
                del pending[:full]
        return out

    def _chunks(self, index: int, readings: list[dict[str, Any]], size: int) -> list[Message]:
        device_id = self.devices[index].id
        return [
            Message(index, device_id, {"device_id": device_id, "readings": readings[i : i + size]})
            for i in range(0, len(readings), size)
        ]


def generate(cfg: SimulatorConfig) -> Iterator[tuple[str, Batch]]:
    """Every ``(device_id, batch)`` of a fixed, bounded timeline, in send order.

    Needs ``start_ms`` and ``count`` or ``duration_s``: it is the offline twin of a run, used by
    tests and benchmarks to know exactly what the simulator sends.
    """
    if cfg.start_ms is None or (cfg.count is None and cfg.duration_s is None):
        raise ConfigError("generate() needs start_ms and a bound (count or duration_s)")
    builder = BatchBuilder(cfg)
    tick = 0
    while True:
        for message in builder.tick(tick):
            yield message.device_id, message.batch
        if builder.schedule.is_last_tick(tick):
            break
        tick += 1
    for message in builder.flush():
        yield message.device_id, message.batch
