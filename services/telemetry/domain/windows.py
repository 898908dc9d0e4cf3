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

Layout for the hot path: open windows hang off their *series* (device, metric), which keeps
its current window of every size. A reading inside all of them (nearly every reading) costs
one dict lookup and the statistics updates, not a key, lookup and lateness check per size; the
rest (a new window, an out-of-order reading for an older one, a late reading) take
:meth:`PartitionWindows.add`, which decides everything from scratch, except the two commonest
cases with the default sizes (one smallest and one derived size), written out: a series' next
smallest window (``_roll``, once every ten readings at one reading a second) and a new series
(``_create``). A closed window that is no longer its series' current one (nearly all of them)
stays on the series, marked closed, until the series next opens a window: a boundary's close
then touches only the windows, not their series (docs/decisions/0004-hot-path-decoder.md, "The
window layout").

Sliced windows: the smallest multiple of the smallest size (60 s over 10 s) is *derived*. Its
windows are not updated per reading: each series accumulates the readings of its latest range
of the smallest size (in that range's own window, so the hot path updates one window instead
of two) and adds them to the larger window with Chan's pairwise merge when the series' first
reading of a later range arrives, or when the larger window closes. A reading of an earlier
range goes into the larger window directly. Every merge point is a reading of the series
itself, or the close, after which nothing can reach the window; never a watermark that a
replay would see elsewhere. So a replay performs the same operations in the same order and
rebuilds the same bits (docs/decisions/0008-sliced-windows.md). Other sizes are kept per
reading, like the smallest.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec

WindowKey = tuple[str, str, int, int]  # device_id, metric, size_ms, window_start
T = TypeVar("T")
# What emit_due_as() reports of a window it could not make: its key, the offset of its first
# reading and the exception.
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


# Statistics stay finite for every finite reading. While every value of a window lies within
# +-_HUGE, the plain updates cannot overflow: deviations stay below 2**449, their squares below
# 2**898, which leaves 2**125 for counts. A window that gets a value beyond it keeps ``mean``
# and ``m2`` of its values times _DOWN (``scaled``): exact powers of two, so nothing is rounded
# but values below 2**-422 and an m2 below 2**178 (nothing, next to a value beyond 2**448), and
# values up to the largest float scale to below 2**424. Never the case of physical data.
_HUGE = 2.0**448
_DOWN = 2.0**-600
_UP = 2.0**600


class WindowStats(msgspec.Struct, gc=False):
    """One open window: running statistics (Welford, numerically stable for long windows).

    Not tracked by the garbage collector (``gc=False``, and it refers to nothing that could
    form a cycle): with hundreds of thousands of open windows, every full collection walked
    them all, and those collections were the aggregator's longest stalls.
    ``min``, ``max`` and ``last`` are the values as read; ``mean`` and ``m2`` are scaled by
    ``_DOWN`` once ``scaled`` (a value beyond ``_HUGE``), see :meth:`unscaled`.
    """

    first_offset: int
    start: int = 0
    size_index: int = 0
    # The series' (device_id, metric) while the window is open; None once it has closed.
    key: tuple[str, str] | None = None
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    last_ts: int = -1
    last: float = 0.0
    # What the partition's sealing ``make`` gave once the window ended (see
    # PartitionWindows.seal_ended), and the count it was made at: still valid at the close if
    # no reading came in since. It must not refer back to window state (no cycles here).
    sealed: object = None
    sealed_count: int = -1
    # A derived window only: the series' accumulator still owed to it (see the module's
    # docstring). It refers to another window's state, never back: no cycles.
    pend: WindowStats | None = None
    # Whether it hangs in its series' ``older`` (a newer window of its size is current): then
    # its close leaves it there, marked closed (``key`` None), and the series drops it the next
    # time it touches ``older`` (see PartitionWindows.close_due_as).
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
        """Keep ``mean`` and ``m2`` scaled by ``_DOWN`` from now on (see ``_HUGE``)."""
        if not self.scaled:
            self.scaled = True
            self.mean *= _DOWN
            self.m2 = self.m2 * _DOWN * _DOWN  # 2**-1200 itself is below the smallest float

    def add(self, ts: int, value: float) -> None:
        if self.scaled or not -_HUGE <= value <= _HUGE:
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


_MAX_SHARED_INTS = 10_000
# The per-size layout of PartitionWindows (see its __post_init__), by sizes.
_LAYOUTS: dict[tuple[int, ...], tuple[Any, ...]] = {}
_NONE = WindowStats(first_offset=-1, start=-1)  # "no current window of this size"


def _same(w: ClosedWindow) -> ClosedWindow:
    return w


def _open(older: tuple[WindowStats, ...]) -> tuple[WindowStats, ...]:
    """``older`` without the windows that have closed (see ``WindowStats.in_older``)."""
    if len(older) == 1:
        return () if older[0].key is None else older
    for w in older:
        if w.key is None:
            return tuple(o for o in older if o.key is not None)
    return older


class _Series(msgspec.Struct, gc=False):
    """The open windows of one (device, metric): the newest of each size updated per reading
    in ``current`` (the smallest size, and any size not a multiple of it), of each derived size
    in ``derived``, older ones still within the lateness in ``older``. ``lo <= ts < hi`` is the
    event time covered by every current window; ``deadline`` is when the first of them closes,
    or -1 when some size has no current window (then every reading takes the slow path).
    ``acc`` accumulates the readings of the series' latest smallest-size range for the derived
    windows. Tuples, replaced when a window opens or closes: one object per series for the
    collector to see."""

    key: tuple[str, str]  # (device_id, metric), the very tuple that keys it in the partition
    current: tuple[WindowStats, ...]
    derived: tuple[WindowStats, ...] = ()
    older: tuple[WindowStats, ...] = ()
    lo: int = 0
    hi: int = 0
    deadline: int = -1
    acc: WindowStats | None = None


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


@dataclass(slots=True)
class PartitionWindows:
    """The open windows, watermark and safe commit point of one partition."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    watermark: int = -1
    open_count: int = 0
    _series: dict[tuple[str, str], _Series] = field(default_factory=dict)
    # Windows that close together share one entry: deadline -> windows, plus a heap of deadlines.
    _closing: dict[int, list[WindowStats]] = field(default_factory=dict)
    _deadlines: list[int] = field(default_factory=list)
    # Window starts, ends and deadlines are the same few numbers for every series (windows are
    # aligned to the epoch): one shared int object each instead of one per window and series.
    _ints: dict[int, int] = field(default_factory=dict)
    # ``current`` and ``derived`` of a series without windows (compared by identity first).
    _no_windows: tuple[WindowStats, ...] = ()
    _no_derived: tuple[WindowStats, ...] = ()
    # Deadline -> how far seal_ended() got in that deadline's list of windows, and its make;
    # the sum of the counts those windows were sealed at (see take_sealed()); and the deadlines
    # some of whose seals were kept on their windows (no sink).
    _sealed_upto: dict[int, int] = field(default_factory=dict)
    _sealed_total: dict[int, int] = field(default_factory=dict)
    _sealed_kept: set[int] = field(default_factory=set)
    _sealed_by: Callable[[ClosedWindow], Any] | None = None
    # Deadline -> how many windows at the front of its list emit_due_as() has emitted and
    # retire_due() not yet taken off.
    _emitted: dict[int, int] = field(default_factory=dict)
    # Size indexes updated per reading (the smallest first) and derived ones (multiples of the
    # smallest), and each index's position in its tuple of a series (current or derived).
    _hot: tuple[int, ...] = ()
    _derived: tuple[int, ...] = ()
    _slot: tuple[int, ...] = ()
    _is_derived: tuple[bool, ...] = ()
    # (smallest size, derived size) when those are the only sizes (the default 10 s and 60 s):
    # then a series moving on to its next smallest window takes :meth:`_roll`.
    _roll_sizes: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        layout = _LAYOUTS.get(self.sizes_ms)
        if layout is None:
            self._lay_out()
            layout = _LAYOUTS[self.sizes_ms] = (
                self._hot,
                self._derived,
                self._slot,
                self._is_derived,
                self._no_windows,
                self._no_derived,
                self._roll_sizes,
            )
        else:
            # One per device with a clock per device: the layout of its sizes, worked out once.
            (
                self._hot,
                self._derived,
                self._slot,
                self._is_derived,
                self._no_windows,
                self._no_derived,
                self._roll_sizes,
            ) = layout

    def _lay_out(self) -> None:
        sizes = self.sizes_ms
        if sizes:
            base = min(range(len(sizes)), key=sizes.__getitem__)
            # One derived size, the smallest multiple of the smallest size: with two, a reading
            # late for one but on time for the other would make the accumulator's content
            # depend on a window that a replay may find already closed.
            multiples = [i for i, n in enumerate(sizes) if n > sizes[base] and n % sizes[base] == 0]
            derived = sorted(multiples, key=sizes.__getitem__)[:1]
            self._hot = (base, *(i for i in range(len(sizes)) if i != base and i not in derived))
            self._derived = tuple(derived)
        positions = {i: pos for pos, i in enumerate(self._hot)}
        positions |= {i: pos for pos, i in enumerate(self._derived)}
        self._slot = tuple(positions[i] for i in range(len(sizes)))
        self._is_derived = tuple(i in self._derived for i in range(len(sizes)))
        self._no_windows = (_NONE,) * len(self._hot)
        self._no_derived = (_NONE,) * len(self._derived)
        if len(self._hot) == 1 and len(self._derived) == 1:
            self._roll_sizes = (sizes[self._hot[0]], sizes[self._derived[0]])

    def _shared(self, n: int) -> int:
        ints = self._ints
        if len(ints) >= _MAX_SHARED_INTS:
            ints.clear()
        return ints.setdefault(n, n)

    @property
    def series_count(self) -> int:
        """How many (device, metric) series hold windows (a series with none left is dropped)."""
        return len(self._series)

    @property
    def open(self) -> dict[WindowKey, WindowStats]:
        """Every open window by key (for inspection and tests; the hot path never builds it)."""
        out: dict[WindowKey, WindowStats] = {}
        for (device, metric), series in self._series.items():
            for w in (*series.current, *series.derived, *series.older):
                if w is not _NONE and w.key is not None:
                    out[(device, metric, self.sizes_ms[w.size_index], w.start)] = w
        return out

    def add_records(
        self,
        records: Iterable[tuple[str, Sequence[ReadingLike], int]],
        skip: object,
        late_out: list[tuple[ReadingLike, int]] | None = None,
    ) -> tuple[int, int, dict[int, int]]:
        """Add every reading of ``(device_id, readings, offset)`` records in order, advancing
        the watermark after each (the hot path: one call per poll and partition).

        Readings whose ``quality`` is ``skip`` are left out. Returns the number of readings
        added, the number left out, and how many readings were late per late mask (see
        :meth:`add`). Nothing here raises for a reading the decoder accepted; should it anyway,
        :class:`RecordFailedError` names the record, with the watermark where the readings
        before the failure took it: a replay, doing the same, gets the same windows.
        With ``late_out``, every late reading is appended to it with its late mask.
        """
        if not self.sizes_ms:
            return self._watermark_only(records, skip)
        get = self._series.get
        slow = self._add
        huge = _HUGE
        wm = self.watermark
        added = skipped = 0
        late: dict[int, int] = {}
        offset = -1
        try:
            for device, readings, offset in records:
                for r in readings:
                    if r.quality is skip:
                        skipped += 1
                        continue
                    metric, ts, value = r.metric, r.ts, float(r.value)
                    key = (device, metric)
                    series = get(key)
                    if series is not None and series.deadline > wm and series.lo <= ts < series.hi:
                        # WindowStats.add inlined: this is the innermost loop of the hot path. A
                        # value beyond _HUGE is a new min or max: only then is it looked at, and
                        # its window goes scaled, its series off this path (see _refresh).
                        for s in series.current:
                            if value < s.min:
                                if value < -huge:
                                    series.deadline = -1
                                    s.add(ts, value)
                                    continue
                                s.min = value
                            if value > s.max:
                                if value > huge:
                                    series.deadline = -1
                                    s.add(ts, value)
                                    continue
                                s.max = value
                            n = s.count = s.count + 1
                            delta = value - s.mean
                            s.mean += delta / n
                            s.m2 += delta * (value - s.mean)
                            if ts >= s.last_ts:
                                s.last_ts = ts
                                s.last = value
                    else:
                        self.watermark = wm
                        mask = slow(series, key, ts, value, offset)
                        if mask:
                            late[mask] = late.get(mask, 0) + 1
                            if late_out is not None:
                                late_out.append((r, mask))
                    if ts > wm:  # noqa: PLR1730 (a call per reading costs more)
                        wm = ts
                    added += 1
        except Exception as exc:
            self.watermark = wm
            raise RecordFailedError(offset) from exc
        self.watermark = wm
        return added, skipped, late

    def _watermark_only(
        self, records: Iterable[tuple[str, Sequence[ReadingLike], int]], skip: object
    ) -> tuple[int, int, dict[int, int]]:
        """:meth:`add_records` without window sizes (a process that only runs alarms): the
        watermark and the counts, nothing else."""
        wm = self.watermark
        added = skipped = 0
        for _, readings, _ in records:
            for r in readings:
                if r.quality is skip:
                    skipped += 1
                    continue
                ts = r.ts
                if ts > wm:  # noqa: PLR1730 (a call per reading costs more)
                    wm = ts
                added += 1
        self.watermark = wm
        return added, skipped, {}

    def add(self, device_id: str, metric: str, ts: int, value: float, offset: int) -> int:
        """Add one reading to its window of every size (the watermark is not moved: call
        :meth:`observe` after it).

        Returns a bit mask of the sizes (bit i for ``sizes_ms[i]``) whose window had already
        closed, so the reading was late there and left out; 0 when it was on time everywhere.
        """
        key = (device_id, metric)
        return self._add(self._series.get(key), key, ts, value, offset)

    def _add(
        self, series: _Series | None, key: tuple[str, str], ts: int, value: float, offset: int
    ) -> int:
        if self._roll_sizes is not None:
            if series is None:
                if self._create(key, ts, value, offset):
                    return 0
            elif self._roll(series, ts, value, offset):
                return 0
        late = 0
        lateness = self.lateness_ms
        wm = self.watermark
        sizes = self.sizes_ms
        base: WindowStats | None = None  # the smallest size's window this reading went into
        smallest = self._hot[0]
        for i in self._hot:
            size = sizes[i]
            start = ts - ts % size
            # Decided by the watermark alone, not by whether close_due() ran yet, so that a
            # replay with other poll boundaries builds exactly the same windows.
            if start + size + lateness <= wm:
                late |= 1 << i
            else:
                if series is None:
                    series = self._new_series(key)
                w = series.current[self._slot[i]]
                if w.start != start:
                    w = self._window(series, i, start, offset)
                w.add(ts, value)
                if i == smallest:
                    base = w
        if self._derived:
            series, derived_late = self._add_derived(series, key, ts, value, offset, base=base)
            late |= derived_late
        if series is not None:
            self._refresh(series)
        return late

    def _roll(self, series: _Series, ts: int, value: float, offset: int) -> bool:
        """The commonest reading off the fast path, written out: the series' first reading of
        its next smallest window, on time, inside its current derived window, whose accumulator
        is the smallest window it leaves, and no older window still open. What :meth:`_add`
        would do (the same operations in the same order, so the same bits); False, having
        changed nothing, for anything else."""
        size, dsize = self._roll_sizes  # type: ignore[misc]  # set when this is called
        cur = series.current[0]
        start = ts - ts % size
        if cur is _NONE or start <= cur.start:
            return False
        lateness = self.lateness_ms
        if start + size + lateness <= self.watermark:
            return False  # late for its smallest window
        d = series.derived[0]
        if d is _NONE or d.start != ts - ts % dsize or d.pend is not cur or series.acc is not cur:
            return False
        for o in series.older:
            if o.key is not None:
                return False
        # _window(): the new smallest window, current; the one it follows waits out its lateness.
        w = self._enlist(series.key, self._hot[0], start, start + size + lateness, offset)
        series.current = (w,)
        cur.in_older = True
        series.older = (cur,)
        w.add(ts, value)
        # _add_derived(): the accumulator (the window left) is complete; the new one follows it.
        d.merge(cur)
        d.pend = series.acc = w
        self._refresh_one(series, w.start, start + size)
        if w.scaled:
            series.deadline = -1  # see _refresh
        return True

    def _create(self, key: tuple[str, str], ts: int, value: float, offset: int) -> bool:
        """A new series' first reading, on time, written out like :meth:`_roll` (a start or
        a replay opens every series at once): what :meth:`_add` would do, or False."""
        size, dsize = self._roll_sizes  # type: ignore[misc]  # set when this is called
        start = ts - ts % size
        lateness = self.lateness_ms
        if start + size + lateness <= self.watermark:
            return False  # late for its smallest window: the general path decides the rest
        series = self._new_series(key)
        key = series.key
        w = self._enlist(key, self._hot[0], start, start + size + lateness, offset)
        series.current = (w,)
        w.add(ts, value)
        dstart = ts - ts % dsize
        d = self._enlist(key, self._derived[0], dstart, dstart + dsize + lateness, offset)
        series.derived = (d,)
        d.pend = series.acc = w
        self._refresh_one(series, w.start, start + size)
        if w.scaled:
            series.deadline = -1  # see _refresh
        return True

    def _enlist(
        self, key: tuple[str, str], i: int, start: int, deadline: int, offset: int
    ) -> WindowStats:
        """A new open window of size ``i`` of the series ``key``, listed under its deadline."""
        w = WindowStats(offset, self._shared(start), i, key)
        closing = self._closing.get(deadline)
        if closing is None:
            self._closing[deadline] = [w]
            heapq.heappush(self._deadlines, deadline)
        else:
            closing.append(w)
        self.open_count += 1
        return w

    def _refresh_one(self, series: _Series, lo: int, hi: int) -> None:
        """Set the event-time range ``[lo, hi)`` that every current window of ``series`` covers
        (:meth:`_refresh` computes it; :meth:`_roll` and :meth:`_create` know it)."""
        ints = self._ints  # cleared when full by _shared(), which made these ints
        deadline = hi + self.lateness_ms
        series.lo, series.hi = lo, ints.setdefault(hi, hi)
        series.deadline = ints.setdefault(deadline, deadline)

    def _new_series(self, key: tuple[str, str]) -> _Series:
        # Interned ids: a million open windows must not each hold copies of them.
        key = (sys.intern(key[0]), sys.intern(key[1]))
        series = self._series[key] = _Series(key, self._no_windows, self._no_derived)
        return series

    def _add_derived(
        self,
        series: _Series | None,
        key: tuple[str, str],
        ts: int,
        value: float,
        offset: int,
        *,
        base: WindowStats | None,
    ) -> tuple[_Series | None, int]:
        """The derived size's part of :meth:`_add`: into the series' accumulator, or straight
        into the larger window (see the module's docstring); returns its late mask."""
        [i] = self._derived
        size = self.sizes_ms[i]
        start = ts - ts % size
        if start + size + self.lateness_ms <= self.watermark:
            return series, 1 << i
        if series is None:
            series = self._new_series(key)
        w = series.derived[0]
        if w.start != start:
            w = self._window(series, i, start, offset)
        acc = series.acc
        smallest = self.sizes_ms[self._hot[0]]
        start = ts - ts % smallest
        if acc is not None and acc.start == start:
            if acc is not base:
                if acc.key is not None:
                    # Still the open window of that range, which this reading is late for.
                    acc = self._fork(series, acc)
                acc.add(ts, value)
        elif acc is None or start > acc.start:
            # The series' first reading of a later range: the previous one is complete.
            if acc is not None:
                self._settle(series, acc)
            if base is None:
                # Late for the smallest size, on time for the larger: accumulate apart.
                base = WindowStats(offset, self._shared(start), self._hot[0])
                base.add(ts, value)
            w.pend = series.acc = base
        else:
            w.add(ts, value)  # a range before the accumulator's
        return series, 0

    def _fork(self, series: _Series, acc: WindowStats) -> WindowStats:
        """A copy of the accumulator that is also an open window, to go on with apart from it."""
        copy = msgspec.structs.replace(acc, key=None, sealed=None, sealed_count=-1)
        for w in (*series.derived, *series.older):
            if w.pend is acc:
                w.pend = copy
        series.acc = copy
        return copy

    def _settle(self, series: _Series, acc: WindowStats) -> None:
        """Merge the accumulator into every window it is still owed to."""
        for w in (*series.derived, *series.older):
            if w.pend is acc:
                w.merge(acc)
                w.pend = None

    def _window(self, series: _Series, i: int, start: int, offset: int) -> WindowStats:
        """The open window of ``series`` at ``start`` of size ``i`` (not the current one)."""
        for w in series.older:
            if w.start == start and w.size_index == i and w.key is not None:
                return w
        w = self._enlist(series.key, i, start, start + self.sizes_ms[i] + self.lateness_ms, offset)
        current = self._current(series, i)
        if current is _NONE:
            self._set_current(series, i, w)
            return w
        if start > current.start:
            # A newer window becomes current; the previous one waits out its lateness.
            self._set_current(series, i, w)
            current.in_older = True
            series.older = (*_open(series.older), current)
        else:
            # An out-of-order reading opened a window older than the current one.
            w.in_older = True
            series.older = (*_open(series.older), w)
        return w

    def _current(self, series: _Series, i: int) -> WindowStats:
        return (series.derived if self._is_derived[i] else series.current)[self._slot[i]]

    def _set_current(self, series: _Series, i: int, w: WindowStats) -> None:
        pos = self._slot[i]
        if self._is_derived[i]:
            derived = series.derived
            series.derived = (*derived[:pos], w, *derived[pos + 1 :])
        else:
            current = series.current
            series.current = (*current[:pos], w, *current[pos + 1 :])

    def _refresh(self, series: _Series) -> None:
        # Comparisons, not min()/max(), and the shared ints looked up in place: this runs for
        # every new window, 100 k of them at once at a minute boundary.
        sizes = self.sizes_ms
        lo, hi = -1, sys.maxsize
        for w in series.current:
            if w is _NONE or w.scaled:
                # Every reading takes the slow path: a size has no current window, or a
                # current window is scaled (WindowStats.add, not the hot path, updates it).
                series.deadline = -1
                return
            start = w.start
            if start > lo:  # noqa: PLR1730
                lo = start
            end = start + sizes[w.size_index]
            if end < hi:  # noqa: PLR1730
                hi = end
        self._refresh_one(series, lo, hi)

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
        return self.close_due_as(_same, limit)

    def close_due_as(self, make: Callable[[ClosedWindow], T], limit: int | None = None) -> list[T]:
        """:meth:`close_due`, each window turned into ``make(window)``; a window sealed by
        :meth:`seal_ended` with the same ``make`` and unchanged since gives its seal instead.
        :meth:`emit_due_as` and then :meth:`retire_due` of what it emitted."""
        out = self.emit_due_as(make, limit)
        self.retire_due()
        return out

    def emit_due_as(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int | None = None,
        stop: Container[int] = (),
        failed: WindowFailed | None = None,
    ) -> list[T]:
        """The first half of a close: ``make(window)`` (or the window's seal, as in
        :meth:`close_due_as`) of the windows the watermark has closed that have none yet,
        oldest deadline first, at most ``limit`` of them. They stay open until
        :meth:`retire_due`: :attr:`due`, and holding back :meth:`safe_offset`. Nothing can
        change what they hold meanwhile (every reading for them is late), so a caller can make
        and send all of a boundary's windows before the bookkeeping of their close.

        It stops before a deadline in ``stop`` that has nothing emitted yet: the caller holds
        that deadline's seals (:meth:`seal_ended` with a ``sink``) for :meth:`take_sealed`.

        A window that ``make`` raises for is given to ``failed`` (key, offset of its first
        reading, exception) and counts as emitted, without a result: the same window raises
        again on every try, and a replay makes the same one, so waiting for it would hold the
        partition's commit forever. Without ``failed`` (or for a MemoryError: the process's
        failure, not the window's) the exception propagates."""
        out: list[T] = []
        append = out.append
        watermark, emitted = self.watermark, self._emitted
        same_make = make is self._sealed_by
        for deadline in sorted(d for d in self._deadlines if d <= watermark):
            windows = self._closing[deadline]
            i = emitted.get(deadline, 0)
            if not i and same_make and deadline in stop:
                break
            end = len(windows) if limit is None else min(len(windows), i + limit - len(out))
            j = i
            while j < end:
                made = len(out)
                try:
                    for s in windows[j:end]:
                        pend = s.pend
                        count = s.count if pend is None else s.count + pend.count
                        if same_make and s.sealed_count == count and s.sealed is not None:
                            append(s.sealed)  # type: ignore[arg-type]  # made by this ``make``
                            continue
                        if pend is not None:
                            # Closed by the watermark: no reading reaches it or its accumulator
                            # any more, so the accumulator is merged for good (what a seal did
                            # on a copy).
                            s.merge(pend)
                            s.pend = None
                        append(make(self._closed(s, s.key)))  # type: ignore[arg-type]  # open
                except Exception as exc:
                    if failed is None or isinstance(exc, MemoryError):
                        raise
                    j += len(out) - made  # one result per window before the failed one
                    s = windows[j]
                    key = s.key
                    assert key is not None  # still open until retired
                    failed((*key, self.sizes_ms[s.size_index], s.start), s.first_offset, exc)
                    j += 1
                else:
                    j = end
            if end > i:
                emitted[deadline] = end
            if end < len(windows):
                break  # the limit
        return out

    def take_sealed(
        self, make: Callable[[ClosedWindow], Any], held: Container[int]
    ) -> list[tuple[int, bool]]:
        """The close of windows sealed with a ``sink`` (:meth:`seal_ended`), whose records the
        caller holds by deadline (``held``): for each deadline the watermark has closed, oldest
        first, as long as the next windows to emit are the first of a held deadline, whether
        every window the sink was given for it is unchanged since. If so, ``(deadline, True)``:
        those windows count as emitted (the caller sends what its sink got), and the deadline's
        windows sealed after none (opened after its seals) follow from :meth:`emit_due_as`.
        Otherwise ``(deadline, False)``: a reading reached one of them after its seal (or some
        of its seals stayed on their windows, without the sink), so the caller drops what it
        holds and :meth:`emit_due_as` makes the deadline's windows one by one. What is
        emitted, and in which order, is what :meth:`emit_due_as` alone gives."""
        out: list[tuple[int, bool]] = []
        if make is not self._sealed_by:
            return out
        watermark, emitted = self.watermark, self._emitted
        for deadline in sorted(d for d in self._deadlines if d <= watermark):
            windows = self._closing[deadline]
            i = emitted.get(deadline, 0)
            if i == len(windows):
                continue
            if i or deadline not in held:
                break
            n = self._sealed_upto.get(deadline, 0)
            whole = (
                n > 0
                and deadline not in self._sealed_kept  # the sink did not get them all
                and self._counted(windows, n) == self._sealed_total.get(deadline)
            )
            out.append((deadline, whole))
            if not whole:
                break
            emitted[deadline] = n
            if n < len(windows):
                break
        return out

    @staticmethod
    def _counted(windows: list[WindowStats], n: int) -> int:
        """The readings the first ``n`` windows hold, their accumulators included. It only
        grows (a merge moves readings from an accumulator into its window): equal to the sum at
        their seals, none of them changed since."""
        total = 0
        for s in windows[:n]:
            pend = s.pend
            total += s.count if pend is None else s.count + pend.count
        return total

    def retire_due(self, limit: int | None = None) -> int:
        """The second half of a close: take up to ``limit`` windows that :meth:`emit_due_as`
        has emitted off the open windows (oldest deadline first); returns how many. When that
        is every open window (a quiet partition, the end of a stream), all of them go at once,
        whatever ``limit``: dropping the partition's series costs a fraction of taking each
        window off its series."""
        done = 0
        heap, emitted = self._deadlines, self._emitted
        if heap and max(heap) <= self.watermark:
            closing = self._closing
            if all(emitted.get(d, 0) == len(closing[d]) for d in heap):
                return self._retire_all()
        while heap and heap[0] <= self.watermark:
            deadline = heap[0]
            ready = emitted.get(deadline, 0)
            room = ready if limit is None else min(ready, limit - done)
            if room <= 0:
                break
            windows = self._closing[deadline]
            if room < len(windows):
                windows, self._closing[deadline] = windows[:room], windows[room:]
                emitted[deadline] = ready - room
            else:
                del self._closing[heapq.heappop(heap)]
                del emitted[deadline]
                self._sealed_upto.pop(deadline, None)
                self._sealed_total.pop(deadline, None)
                self._sealed_kept.discard(deadline)
            for s in windows:
                key = s.key
                assert key is not None
                # Emitted: what it holds is never read again (an accumulator still owed to a
                # sealed window went into its seal), so only the references are dropped.
                s.pend = None
                s.sealed = None
                s.key = None
                if not s.in_older:
                    self._detach(self._series[key], s)
                # else it stays in its series' older windows, closed, until the series next
                # touches them: one series lookup and tuple fewer per window at a boundary.
            done += len(windows)
            if deadline in emitted:
                break  # the limit, or windows of this deadline still to emit
        self.open_count -= done
        return done

    def _retire_all(self) -> int:
        """:meth:`retire_due` of every open window, all emitted: no series is left with an
        open window, so all of them are dropped (what taking each window off would end in)."""
        done = sum(map(len, self._closing.values()))
        self._closing.clear()
        self._deadlines.clear()
        self._emitted.clear()
        self._sealed_upto.clear()
        self._sealed_total.clear()
        self._sealed_kept.clear()
        self._series.clear()
        self.open_count -= done
        return done

    def seal_ended(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int,
        settle_ms: int = 0,
        finish_ms: int | None = None,
        sink: Callable[[int, list[T]], None] | None = None,
    ) -> int:
        """Turn up to ``limit`` windows that have ended (``end + settle_ms <= watermark``) but
        are still open for late readings into ``make(window)`` ahead of their close, which then
        costs only the bookkeeping; returns how many. A reading that reaches a sealed window after
        this voids its seal (it is made again at the close), so the result is unchanged.
        Meant for the quiet time between a window's end and its close (the allowed lateness),
        instead of making a whole boundary's windows at once.

        With ``finish_ms``, sealing is paced: a deadline's windows are sealed only in proportion
        to how far the watermark has come from their settle point (``end + settle_ms``) towards
        ``deadline - finish_ms`` (all of them from there on), so a boundary's seals are spread
        over the lateness instead of made at once.

        With ``sink``, the records go to ``sink(deadline, records)``, in each deadline's order,
        instead of staying on their windows: the caller prepares their sending ahead too, and
        at the close :meth:`take_sealed` tells whether it can send them as they are."""
        done = 0
        # A window's deadline is its end + lateness: sealed once end + settle <= watermark.
        watermark, unsettled = self.watermark, self.lateness_ms - settle_ms
        upto, totals = self._sealed_upto, self._sealed_total
        if make is not self._sealed_by:
            # Seals of another ``make`` are ignored at the close; start over with this one.
            self._sealed_by, upto, totals = make, {}, {}
            self._sealed_upto, self._sealed_total = upto, totals
            self._sealed_kept.clear()
        for deadline, windows in self._closing.items():
            if not deadline - unsettled <= watermark < deadline:
                continue
            i = upto.get(deadline, 0)
            n = len(windows)
            if finish_ms is not None:
                begin, finish = deadline - unsettled, deadline - finish_ms
                if begin < finish and watermark < finish:
                    # ceil(n * share): the first window as soon as the settle point is reached
                    n = min(n, -(-n * (watermark - begin + 1) // (finish - begin)))
            end = min(n, i + limit - done)
            if end <= i:
                continue
            made: list[T] = []
            total = 0
            try:
                for s in windows[i:end]:
                    key = s.key
                    # A derived window's accumulator is merged at the latest at the close.
                    count = s.count if s.pend is None else s.count + s.pend.count
                    total += count
                    if key is not None:
                        record = make(self._snapshot(s, key))
                        s.sealed_count = count
                        if sink is None:
                            s.sealed = record
                        else:
                            s.sealed = None
                            made.append(record)
            except MemoryError:
                raise
            except Exception:  # noqa: BLE001 (reported at the close, see below)
                # A window ``make`` fails for now fails at its close too, where emit_due_as
                # reports it: the deadline's seals are void (made again at the close), and
                # sealing goes on past them.
                self._sealed_kept.add(deadline)
            else:
                if sink is None:
                    self._sealed_kept.add(deadline)
                else:
                    sink(deadline, made)
            done += end - i
            upto[deadline] = end
            totals[deadline] = totals.get(deadline, 0) + total
            if done >= limit:
                break
        return done

    @property
    def sealed_ahead(self) -> int:
        """How many windows :meth:`seal_ended` has sealed whose deadline the watermark has not
        reached yet (what sealing holds in memory ahead of the closes)."""
        watermark = self.watermark
        return sum(n for deadline, n in self._sealed_upto.items() if deadline > watermark)

    def _snapshot(self, s: WindowStats, key: tuple[str, str]) -> ClosedWindow:
        """The window as it will be once its accumulator is merged (the same merge on a copy,
        the same bits): for a window still open to late readings."""
        pend = s.pend
        if pend is not None:
            s = msgspec.structs.replace(s, pend=None, sealed=None)
            s.merge(pend)
        return self._closed(s, key)

    def _closed(self, s: WindowStats, key: tuple[str, str]) -> ClosedWindow:
        """The window as emitted: finite, ``min <= mean <= max`` (a running mean can round an
        ulp outside the values it averages), ``stddev >= 0``. Written out, no call for the
        common case: this runs once per window at a boundary."""
        start, lo, hi, mean, m2 = s.start, s.min, s.max, s.mean, s.m2
        stddev = math.sqrt(m2 / s.count) if m2 > 0.0 else 0.0
        if s.scaled:
            mean, stddev = s.unscaled(mean, stddev)
        if not lo <= mean <= hi and s.count:
            mean = lo if mean < lo else hi
        return ClosedWindow(
            key[0],
            key[1],
            start,
            start + self.sizes_ms[s.size_index],
            s.count,
            lo,
            hi,
            mean,
            stddev,
            s.last,
        )

    def _detach(self, series: _Series, w: WindowStats) -> None:
        """Take a closed window (``key`` already None) off its series, and drop the series
        once it has no open window left."""
        i = w.size_index
        if self._current(series, i) is w:
            self._set_current(series, i, _NONE)
            series.deadline = -1
        older = series.older = _open(series.older)
        if series.current == self._no_windows and series.derived == self._no_derived:
            if not older:
                del self._series[series.key]
            else:
                # Not expected: a window's older ones of its size close before it (earlier
                # deadlines). Should one be left, it detaches at its own close, which drops
                # the series after the last of them, instead of lingering.
                for o in older:
                    o.in_older = False

    @property
    def due(self) -> bool:
        """Whether some window is closed by the watermark but not yet taken by close_due (or
        retired after :meth:`emit_due_as`)."""
        return self.due_at(self.watermark)

    @property
    def emitted_waiting(self) -> bool:
        """Whether some window :meth:`emit_due_as` emitted waits for :meth:`retire_due`."""
        return any(self._emitted.values())

    @property
    def to_emit(self) -> bool:
        """Whether some window closed by the watermark has not been emitted yet."""
        watermark, emitted = self.watermark, self._emitted
        return any(
            emitted.get(d, 0) < len(self._closing[d]) for d in self._deadlines if d <= watermark
        )

    def due_at(self, watermark: int) -> bool:
        """Whether the watermark at ``watermark`` would close some open window."""
        return bool(self._deadlines) and self._deadlines[0] <= watermark

    def safe_offset(self, next_offset: int) -> int:
        """The offset to commit: below it every reading belongs to an emitted window.

        Each deadline's list holds open windows only, in creation order, which is offset
        order: its first window is its oldest, and the oldest of those is the safe offset."""
        if not self._closing:
            return next_offset
        return min(windows[0].first_offset for windows in self._closing.values())
