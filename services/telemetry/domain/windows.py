"""Event-time tumbling windows of one Kafka partition.

Windows are aligned to the Unix epoch (``start = ts - ts % size``, ``end`` exclusive). A window
closes when the partition's watermark (greatest event time seen, or advanced by wall clock while
the partition is idle) reaches ``end + allowed_lateness``. A reading whose window has already
closed is *late*: it is counted and never mixed into a closed window.

Recovery without a state store: the consumer commits, per partition, only the offset of the
first reading of the oldest open window, together with the watermark. After a crash the new
owner restores that watermark and replays from that offset; readings of windows that had
already closed are recognised by the restored watermark and skipped, and the open windows are
rebuilt from exactly the readings they had, in the same order, so a re-emitted window is
identical (same ``ce_id``, same content).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

WindowKey = tuple[str, str, int, int]  # device_id, metric, size_ms, window_start


@dataclass(slots=True)
class WindowStats:
    """Running statistics (Welford), numerically stable for long windows."""

    first_offset: int
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    last_ts: int = -1
    last: float = 0.0

    def add(self, ts: int, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        # Ties on ts keep the later arrival: "last" is the latest reading as the partition saw it.
        if ts >= self.last_ts:
            self.last_ts = ts
            self.last = value

    @property
    def stddev(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    device_id: str
    metric: str
    size_ms: int
    window_start: int
    window_end: int
    count: int
    min: float
    max: float
    mean: float
    stddev: float
    last: float


@dataclass(slots=True)
class PartitionWindows:
    """The open windows, watermark and safe commit point of one partition."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    watermark: int = -1
    open: dict[WindowKey, WindowStats] = field(default_factory=dict)
    _closing: list[tuple[int, WindowKey]] = field(default_factory=list)
    _by_offset: list[tuple[int, WindowKey]] = field(default_factory=list)

    def is_closed(self, window_end: int) -> bool:
        return window_end + self.lateness_ms <= self.watermark

    def add(self, device_id: str, metric: str, ts: int, value: float, offset: int) -> int:
        """Add one reading to its window of every size.

        Returns a bit mask of the sizes (bit i for ``sizes_ms[i]``) whose window had already
        closed, so the reading was late there and left out; 0 when it was on time everywhere.
        """
        late = 0
        for i, size in enumerate(self.sizes_ms):
            start = ts - ts % size
            key = (device_id, metric, size, start)
            # Decided by the watermark alone, not by whether close_due() ran yet, so that a
            # replay with other poll boundaries builds exactly the same windows.
            if self.is_closed(start + size):
                late |= 1 << i
                continue
            stats = self.open.get(key)
            if stats is None:
                stats = WindowStats(first_offset=offset)
                self.open[key] = stats
                heapq.heappush(self._closing, (start + size + self.lateness_ms, key))
                heapq.heappush(self._by_offset, (offset, key))
            stats.add(ts, value)
        return late

    def observe(self, ts: int) -> None:
        """Advance the watermark with a reading's event time (call after adding it)."""
        self.watermark = max(self.watermark, ts)

    def advance_to(self, watermark: int) -> None:
        """Advance the watermark by wall clock (idle partition); never moves it back."""
        self.watermark = max(self.watermark, watermark)

    def close_due(self) -> list[ClosedWindow]:
        """Remove and return the windows the watermark has closed, oldest first."""
        closed: list[ClosedWindow] = []
        heap = self._closing
        while heap and heap[0][0] <= self.watermark:
            _, key = heapq.heappop(heap)
            stats = self.open.pop(key)
            device_id, metric, size, start = key
            closed.append(
                ClosedWindow(
                    device_id=device_id,
                    metric=metric,
                    size_ms=size,
                    window_start=start,
                    window_end=start + size,
                    count=stats.count,
                    min=stats.min,
                    max=stats.max,
                    mean=stats.mean,
                    stddev=stats.stddev,
                    last=stats.last,
                )
            )
        return closed

    def safe_offset(self, next_offset: int) -> int:
        """The offset to commit: below it every reading belongs to an emitted window."""
        heap = self._by_offset
        while heap:
            offset, key = heap[0]
            stats = self.open.get(key)
            if stats is not None and stats.first_offset == offset:
                return offset
            heapq.heappop(heap)  # that window has closed since; drop the stale entry
        return next_offset
