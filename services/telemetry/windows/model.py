"""What the windows take in and give out: the reading they need (:class:`ReadingLike`), a
window's key, the emitted window (:class:`ClosedWindow`) and how a window's statistics become
one (:func:`closed_window`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import msgspec

from services.telemetry.windows.stats import WindowStats

WindowKey = tuple[str, str, int, int]  # device_id, metric, size_ms, window_start
# What PartitionWindows.emit() reports of a window it could not make: its key, the offset of
# its first reading and the exception.
WindowFailed = Callable[[WindowKey, int, Exception], None]


class RecordFailedError(Exception):
    """:meth:`PartitionWindows.add_records` raised while adding the readings of the record at
    ``offset`` (the cause is chained): the records before it are in the windows, the records
    after it are not."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"adding the readings of offset {offset} failed")
        self.offset = offset


class ReadingLike(Protocol):
    """What the windows need of a decoded reading (``decode_fast.FastReading`` fits)."""

    @property
    def metric(self) -> str: ...
    @property
    def ts(self) -> int: ...
    @property
    def value(self) -> float: ...
    @property
    def quality(self) -> object: ...


class ClosedWindow(msgspec.Struct, frozen=True, gc=False):
    """One emitted window. A boundary builds one per series and size at once (100 k in the
    benchmark): msgspec Structs are cheaper to build than dataclasses, and untracked by the
    garbage collector, whose full collections during the burst otherwise doubled its cost.

    Its fields are those of the ``telemetry.aggregates.v1`` payload (``WindowAggregate``), in
    the contract's order, so the emitter encodes it as it is; the size is derived from them."""

    device_id: str
    metric: str
    window_start: int
    window_end: int
    count: int
    min: float
    max: float
    mean: float
    stddev: float
    last: float

    @property
    def size_ms(self) -> int:
        return self.window_end - self.window_start


def same(w: ClosedWindow) -> ClosedWindow:
    """The ``make`` that emits the window itself."""
    return w


def closed_window(s: WindowStats, key: tuple[str, str], size_ms: int) -> ClosedWindow:
    """The window ``s`` of the series ``key`` as emitted: finite, ``min <= mean <= max`` (a
    running mean can round an ulp outside the values it averages), ``stddev >= 0``. Written
    out, no call for the common case: this runs once per window at a boundary."""
    start, lo, hi, mean, m2 = s.start, s.min, s.max, s.mean, s.m2
    stddev = math.sqrt(m2 / s.count) if m2 > 0.0 else 0.0
    if s.scaled:
        mean, stddev = s.unscaled(mean, stddev)
    if not lo <= mean <= hi and s.count:
        mean = lo if mean < lo else hi
    return ClosedWindow(
        key[0], key[1], start, start + size_ms, s.count, lo, hi, mean, stddev, s.last
    )
