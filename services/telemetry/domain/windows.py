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
import sys
from collections import deque
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
        # Comparisons, not min()/max(): this runs once per reading and window size.
        if value < self.min:  # noqa: PLR1730 (a call per reading costs more)
            self.min = value
        if value > self.max:  # noqa: PLR1730 (a call per reading costs more)
            self.max = value
        # Ties on ts keep the later arrival: "last" is the latest reading as the partition saw it.
        if ts >= self.last_ts:
            self.last_ts = ts
            self.last = value

    @property
    def stddev(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


@dataclass(slots=True, unsafe_hash=True)
class ClosedWindow:
    """One emitted window. Not ``frozen``: a frozen dataclass's ``__init__`` costs about five
    times as much, and one is built per closed window, in the emit burst at a window boundary."""

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
    # Windows that close together share one entry: deadline -> keys, plus a heap of deadlines.
    _closing: dict[int, list[WindowKey]] = field(default_factory=dict)
    _deadlines: list[int] = field(default_factory=list)
    # Windows in creation order, which is offset order: the first open one is the safe offset.
    _by_offset: deque[WindowKey] = field(default_factory=deque)

    def is_closed(self, window_end: int) -> bool:
        return window_end + self.lateness_ms <= self.watermark

    def add(
        self,
        device_id: str,
        metric: str,
        ts: int,
        value: float,
        offset: int,
        *,
        observe: bool = False,
    ) -> int:
        """Add one reading to its window of every size (and, with ``observe``, then advance the
        watermark with it: one call per reading on the hot path).

        Returns a bit mask of the sizes (bit i for ``sizes_ms[i]``) whose window had already
        closed, so the reading was late there and left out; 0 when it was on time everywhere.
        """
        late = 0
        bit = 1
        lateness = self.lateness_ms
        closed_to = self.watermark - lateness
        windows = self.open
        for size in self.sizes_ms:
            start = ts - ts % size
            # Decided by the watermark alone, not by whether close_due() ran yet, so that a
            # replay with other poll boundaries builds exactly the same windows.
            if start + size <= closed_to:
                late |= bit
            else:
                key = (device_id, metric, size, start)
                s = windows.get(key)
                if s is None:
                    s = self._open_window(key, start + size + lateness, offset)
                # WindowStats.add inlined: this is the innermost loop of the hot path.
                n = s.count = s.count + 1
                delta = value - s.mean
                s.mean += delta / n
                s.m2 += delta * (value - s.mean)
                if value < s.min:  # noqa: PLR1730 (a call per reading costs more)
                    s.min = value
                if value > s.max:  # noqa: PLR1730 (a call per reading costs more)
                    s.max = value
                if ts >= s.last_ts:
                    s.last_ts = ts
                    s.last = value
            bit <<= 1
        if observe and ts > self.watermark:
            self.watermark = ts
        return late

    def _open_window(self, key: WindowKey, deadline: int, offset: int) -> WindowStats:
        device_id, metric, size, start = key
        # Interned names: a million open windows must not each hold copies of their ids.
        key = (sys.intern(device_id), sys.intern(metric), size, start)
        stats = self.open[key] = WindowStats(first_offset=offset)
        closing = self._closing.get(deadline)
        if closing is None:
            self._closing[deadline] = [key]
            heapq.heappush(self._deadlines, deadline)
        else:
            closing.append(key)
        self._by_offset.append(key)
        return stats

    def observe(self, ts: int) -> None:
        """Advance the watermark with a reading's event time (call after adding it)."""
        self.watermark = max(self.watermark, ts)

    def advance_to(self, watermark: int) -> None:
        """Advance the watermark by wall clock (idle partition); never moves it back."""
        self.watermark = max(self.watermark, watermark)

    def close_due(self, limit: int | None = None) -> list[ClosedWindow]:
        """Remove and return the windows the watermark has closed, oldest first; at most
        ``limit`` of them, so the caller can spread a boundary's burst over several polls.

        Windows left due stay open (and hold back :meth:`safe_offset`) until a later call; no
        reading can reach them meanwhile, since :meth:`add` decides lateness by the watermark.
        """
        closed: list[ClosedWindow] = []
        heap = self._deadlines
        append, pop = closed.append, self.open.pop
        while heap and heap[0] <= self.watermark:
            keys = self._closing[heap[0]]
            room = len(keys) if limit is None else limit - len(closed)
            if room <= 0:
                break
            if room < len(keys):
                keys, self._closing[heap[0]] = keys[:room], keys[room:]
            else:
                del self._closing[heapq.heappop(heap)]
            for key in keys:
                s = pop(key)
                device_id, metric, size, start = key
                append(
                    ClosedWindow(
                        device_id,
                        metric,
                        size,
                        start,
                        start + size,
                        s.count,
                        s.min,
                        s.max,
                        s.mean,
                        math.sqrt(s.m2 / s.count) if s.count else 0.0,
                        s.last,
                    )
                )
        return closed

    @property
    def due(self) -> bool:
        """Whether some window is closed by the watermark but not yet taken by close_due."""
        return bool(self._deadlines) and self._deadlines[0] <= self.watermark

    def safe_offset(self, next_offset: int) -> int:
        """The offset to commit: below it every reading belongs to an emitted window."""
        queue = self._by_offset
        while queue:
            stats = self.open.get(queue[0])
            if stats is not None:
                return stats.first_offset
            queue.popleft()  # that window has closed since; drop the stale entry
        return next_offset
