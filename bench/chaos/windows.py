"""The telemetry invariant: every window on ``telemetry.aggregates.v1`` equals an independent
computation from the readings on ``telemetry.readings.v1``; none missing, none with two contents.

The computation follows the service's documented rules (event time per device,
docs/decisions/0002-window-recovery.md), not its code. Per partition in offset order, a
device's clock is the greatest ``ts`` of its readings seen before (readings of quality ``bad``
are left out and do not move it), raised to the floor: the partition's watermark (its greatest
device clock) minus the backfill horizon. A reading is late for a size when its window's
``start + size + allowed lateness <= clock`` of its device. The run disables the idle clock
(the only other thing that moves a clock) for as long as it lasts, so these rules decide
everything. A window must have been emitted once its device's final clock has closed it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from pydantic import ValidationError

from bench.chaos.records import Rec, Verdict, in_order
from contracts.telemetry import Quality, ReadingsBatch

WindowKey = tuple[str, str, int, int]  # device, metric, size_ms, window_start
Reading = tuple[str, str, int, float]  # device, metric, ts, value


@dataclass(frozen=True)
class Stats:
    count: int
    min: float
    max: float
    mean: float
    stddev: float
    last: float


@dataclass
class _Acc:
    values: list[float] = field(default_factory=list)
    last_ts: int = -1
    last: float = 0.0

    def add(self, ts: int, value: float) -> None:
        self.values.append(value)
        if ts >= self.last_ts:  # ties keep the later arrival
            self.last_ts, self.last = ts, value

    def stats(self) -> Stats:
        n = len(self.values)
        mean = math.fsum(self.values) / n
        var = math.fsum((v - mean) ** 2 for v in self.values) / n
        return Stats(n, min(self.values), max(self.values), mean, math.sqrt(var), self.last)


LateRows = list[tuple[str, int, float]]  # metric, ts, value
Source = tuple[int, int]  # partition, offset of a readings record


@dataclass
class Expected:
    windows: dict[WindowKey, Stats]
    closed: set[WindowKey]
    readings: int
    late: int
    poison: int
    late_records: dict[Source, LateRows] = field(default_factory=dict)
    """The late readings of each input record that has any, in the record's order."""


def decode(value: bytes | None) -> ReadingsBatch | None:
    """The record as the contract reads it; None for poison."""
    try:
        return ReadingsBatch.model_validate_json(value or b"")
    except (ValidationError, ValueError):
        return None


def expected_windows(
    readings: Iterable[Rec], sizes_ms: tuple[int, ...], lateness_ms: int, horizon_ms: int
) -> Expected:
    """The windows, the closed ones and the late readings by the rules above."""
    exp = Expected({}, set(), 0, 0, 0)
    accs: dict[WindowKey, _Acc] = {}
    by_partition: dict[int, list[Rec]] = {}
    for rec in in_order(list(readings)):
        by_partition.setdefault(rec.partition, []).append(rec)
    for records in by_partition.values():
        clocks: dict[str, int] = {}
        watermark = -1
        keys: list[WindowKey] = []
        for rec in records:
            batch = decode(rec.value)
            if batch is None:
                exp.poison += 1
                continue
            device = batch.device_id
            clock = max(clocks.get(device, -1), watermark - horizon_ms)
            late: LateRows = []
            for r in batch.readings:
                if r.quality is Quality.BAD:
                    continue
                exp.readings += 1
                value = float(r.value)
                was_late = False
                for size in sizes_ms:
                    start = r.ts - r.ts % size
                    if start + size + lateness_ms <= clock:
                        was_late = True
                        continue
                    key = (device, r.metric, size, start)
                    if key not in accs:
                        accs[key] = _Acc()
                        keys.append(key)
                    accs[key].add(r.ts, value)
                if was_late:  # late for one size or more: it is on the late topic
                    late.append((r.metric, r.ts, value))
                clock = max(clock, r.ts)
            clocks[device] = clock
            watermark = max(watermark, clock)
            if late:
                exp.late_records[(rec.partition, rec.offset)] = late
        floor = watermark - horizon_ms
        exp.closed.update(k for k in keys if k[3] + k[2] + lateness_ms <= max(clocks[k[0]], floor))
    exp.windows = {k: a.stats() for k, a in accs.items()}
    exp.late = sum(len(rows) for rows in exp.late_records.values())
    return exp


def _emitted(value: bytes | None) -> tuple[WindowKey, Stats] | None:
    try:
        d = orjson.loads(value or b"")
        key = (d["device_id"], d["metric"], d["window_end"] - d["window_start"], d["window_start"])
        stats = Stats(d["count"], d["min"], d["max"], d["mean"], d["stddev"], d["last"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return key, stats


def differences(got: Stats, want: Stats) -> list[str]:
    """Exact for count, min, max and last; mean and stddev within 1e-9 of the values' scale."""
    tol = 1e-9 * max(abs(want.min), abs(want.max), 1.0)
    out = [
        f"{name} {getattr(got, name)!r} != {getattr(want, name)!r}"
        for name in ("count", "min", "max", "last")
        if getattr(got, name) != getattr(want, name)
    ]
    out += [
        f"{name} {getattr(got, name)!r} != {getattr(want, name)!r}"
        for name in ("mean", "stddev")
        if not abs(getattr(got, name) - getattr(want, name)) <= tol
    ]
    return out


def check_windows(expected: Expected, aggregates: Iterable[Rec]) -> Verdict:
    v = Verdict("telemetry_windows")
    by_id: dict[str, tuple[WindowKey, Stats]] = {}
    by_key: dict[WindowKey, Stats] = {}
    duplicates = 0
    for rec in aggregates:
        parsed = _emitted(rec.value)
        if parsed is None:
            v.fail(f"undecodable aggregate at {rec.partition}@{rec.offset}")
            continue
        key, stats = parsed
        seen = by_id.get(rec.ce_id)
        if seen is not None:
            if seen != parsed:
                v.fail(f"ce_id {rec.ce_id} has two contents: {seen} and {parsed}")
            else:
                duplicates += 1
            continue
        by_id[rec.ce_id] = parsed
        if key in by_key and by_key[key] != stats:
            v.fail(f"window {key} emitted with two contents under two ce_ids")
        by_key[key] = stats
    for key, stats in by_key.items():
        want = expected.windows.get(key)
        if want is None:
            v.fail(f"window {key} emitted but no reading on the input falls in it")
        elif diff := differences(stats, want):
            v.fail(f"window {key}: {'; '.join(diff)}")
    missing = sorted(expected.closed - by_key.keys())
    for key in missing:
        v.fail(f"window {key} closed (its device's final clock past it) but never emitted")
    v.figures = {
        "readings_on_topic": expected.readings,
        "late_by_rule": expected.late,
        "poison_records_on_topic": expected.poison,
        "windows_expected_closed": len(expected.closed),
        "windows_emitted": len(by_key),
        "windows_missing": len(missing),
        "duplicate_emits_same_content": duplicates,
    }
    return v


def check_delivered(acked: Iterable[Reading], readings: Iterable[Rec]) -> Verdict:
    """Every reading the load's producer had acknowledged is on the readings topic."""
    v = Verdict("telemetry_load_delivered")
    on_topic: dict[Reading, int] = {}
    for rec in readings:
        batch = decode(rec.value)
        if batch is None:
            continue
        for r in batch.readings:
            key = (batch.device_id, r.metric, r.ts, float(r.value))
            on_topic[key] = on_topic.get(key, 0) + 1
    acked_list = list(acked)
    for reading in acked_list:
        if reading not in on_topic:
            v.fail(f"acknowledged reading {reading} is not on the topic")
    mine = {r[0] for r in acked_list}
    v.figures = {
        "readings_acked": len(acked_list),
        "readings_sent_again": sum(n - 1 for k, n in on_topic.items() if k[0] in mine and n > 1),
    }
    return v
