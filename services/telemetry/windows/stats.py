"""A window's running statistics (:class:`WindowStats`), exact for every finite reading.

Welford's update per reading and Chan et al.'s pairwise merge (a derived window takes its
slices that way, docs/decisions/0008-sliced-windows.md). The same readings in the same order
give the same bits, which is what a replay relies on (docs/decisions/0002-window-recovery.md).
"""

from __future__ import annotations

import math

import msgspec

# Statistics stay finite for every finite reading. While every value of a window lies within
# +-HUGE, the plain updates cannot overflow: deviations stay below 2**449, their squares below
# 2**898, which leaves 2**125 for counts. A window that gets a value beyond it keeps ``mean``
# and ``m2`` of its values times _DOWN (``scaled``): exact powers of two, so nothing is rounded
# but values below 2**-422 and an m2 below 2**178 (nothing, next to a value beyond 2**448), and
# values up to the largest float scale to below 2**424. Never the case of physical data.
HUGE = 2.0**448
_DOWN = 2.0**-600
_UP = 2.0**600


class WindowStats(msgspec.Struct, gc=False):
    """One open window: running statistics (Welford, numerically stable for long windows).

    Not tracked by the garbage collector (``gc=False``, and it refers to nothing that could
    form a cycle): with hundreds of thousands of open windows, every full collection walked
    them all, and those collections were the aggregator's longest stalls.
    ``min``, ``max`` and ``last`` are the values as read; ``mean`` and ``m2`` are scaled by
    ``_DOWN`` once ``scaled`` (a value beyond ``HUGE``), see :meth:`unscaled`.
    """

    first_offset: int
    start: int = 0
    size_index: int = 0
    # The series' (device_id, metric) until the window is retired; None from then on, and for
    # an accumulator that is no window of its own.
    key: tuple[str, str] | None = None
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    last_ts: int = -1
    last: float = 0.0
    # What the partition's sealing ``make`` gave once the window ended (see
    # PartitionWindows.seal), and the count it was made at: still valid at its emit if
    # no reading came in since. It must not refer back to window state (no cycles here).
    sealed: object = None
    sealed_count: int = -1
    # A derived window only: the series' accumulator still owed to it (see "Sliced windows"
    # in series.py). It refers to another window's state, never back: no cycles.
    pend: WindowStats | None = None
    # Whether it hangs in its series' ``older`` (a newer window of its size is current): then
    # its retirement leaves it there, marked closed (``key`` None), and the series drops it the
    # next time it touches ``older`` (see PartitionWindows.retire).
    in_older: bool = False
    scaled: bool = False

    def merge(self, o: WindowStats) -> None:
        """Add the readings summarised by ``o`` (Chan et al.'s pairwise update). ``o``'s
        readings have event times after this window's, or equal ones that arrived earlier: on
        a tie of ``last_ts`` this window keeps its ``last``."""
        m = o.count
        if not m:
            return
        n = self.count
        if not n:
            self.count, self.mean, self.m2, self.scaled = m, o.mean, o.m2, o.scaled
            self.min, self.max, self.last_ts, self.last = o.min, o.max, o.last_ts, o.last
            return
        total = n + m
        if self.scaled or o.scaled:
            self._merge_scaled(o, n, m, total)
        else:
            delta = o.mean - self.mean
            self.mean += delta * m / total
            self.m2 += o.m2 + delta * delta * n * m / total
        self.count = total
        if o.min < self.min:  # noqa: PLR1730
            self.min = o.min
        if o.max > self.max:  # noqa: PLR1730
            self.max = o.max
        if o.last_ts > self.last_ts:
            self.last_ts, self.last = o.last_ts, o.last

    def _merge_scaled(self, o: WindowStats, n: int, m: int, total: int) -> None:
        """:meth:`merge`'s statistics when either side is scaled: both are, then."""
        self.scale()
        mean, m2 = (o.mean, o.m2) if o.scaled else (o.mean * _DOWN, o.m2 * _DOWN * _DOWN)
        delta = mean - self.mean
        self.mean += delta * m / total
        self.m2 += m2 + delta * delta * n * m / total

    def scale(self) -> None:
        """Keep ``mean`` and ``m2`` scaled by ``_DOWN`` from now on (see ``HUGE``)."""
        if not self.scaled:
            self.scaled = True
            self.mean *= _DOWN
            self.m2 = self.m2 * _DOWN * _DOWN  # 2**-1200 itself is below the smallest float

    def add(self, ts: int, value: float) -> None:
        if self.scaled or not -HUGE <= value <= HUGE:
            self._add_scaled(ts, value)
            return
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

    def _add_scaled(self, ts: int, value: float) -> None:
        """:meth:`add` of a scaled window (scaled first if it is not yet)."""
        self.scale()
        n = self.count = self.count + 1
        v = value * _DOWN
        delta = v - self.mean
        self.mean += delta / n
        self.m2 += delta * (v - self.mean)
        if value < self.min:  # noqa: PLR1730
            self.min = value
        if value > self.max:  # noqa: PLR1730
            self.max = value
        if ts >= self.last_ts:
            self.last_ts = ts
            self.last = value

    def unscaled(self, mean: float, stddev: float) -> tuple[float, float]:
        """A scaled window's mean and stddev as read, the stddev at most half the range (what
        no stddev exceeds): scaled back, it could round past the largest float."""
        stddev *= _UP
        half = self.max * 0.5 - self.min * 0.5  # cannot overflow
        return mean * _UP, half if stddev > half else stddev
