"""The open windows of one partition, by series and by deadline (:class:`WindowIndex`).

Layout for the hot path: open windows hang off their *series* (device, metric), which keeps
its current window of every size. A reading inside all of them (nearly every reading) costs
one dict lookup and the statistics updates, not a key, lookup and lateness check per size
(``partition.py``); the rest (a new window, an out-of-order reading for an older one, a late
reading) take the general path of ``adding.py``. A retired window that is no longer its
series' current one (nearly all of them) stays on the series, marked retired (``key`` None),
until the series next opens a window: a boundary's retirement then touches only the windows,
not their series (docs/decisions/0004-hot-path-decoder.md, "The window layout").

Sliced windows: the smallest multiple of the smallest size (60 s over 10 s) is *derived*. Its
windows are not updated per reading: each series accumulates the readings of its latest range
of the smallest size (in that range's own window, so the hot path updates one window instead
of two) and adds them to the larger window with Chan's pairwise merge when the series' first
reading of a later range arrives, or when the larger window is emitted. A reading of an
earlier range goes into the larger window directly. Every merge point is a reading of the
series itself, or the emit, after which nothing can reach the window; never a watermark that a
replay would see elsewhere. So a replay performs the same operations in the same order and
rebuilds the same bits (docs/decisions/0008-sliced-windows.md). Other sizes are kept per
reading, like the smallest.

By deadline: windows whose deadline (end plus the allowed lateness) is the same share one
list, in creation order, which is offset order; a heap holds the deadlines. Both the close and
the safe offset read only those lists. What sealing ahead has done per deadline
(:class:`SealLedger`, see ``ledger.py``) is part of the index, since retiring a deadline's
windows forgets it.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.stats import WindowStats

_MAX_SHARED_INTS = 10_000
NONE = WindowStats(first_offset=-1, start=-1)  # "no current window of this size"


def open_only(older: tuple[WindowStats, ...]) -> tuple[WindowStats, ...]:
    """``older`` without the windows that have been retired (see ``WindowStats.in_older``)."""
    if len(older) == 1:
        return () if older[0].key is None else older
    for w in older:
        if w.key is None:
            return tuple(o for o in older if o.key is not None)
    return older


class Series(msgspec.Struct, gc=False):
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


class Layout(NamedTuple):
    """Where each window size lives on a series, worked out once per tuple of sizes."""

    hot: tuple[int, ...]  # size indexes updated per reading, the smallest first
    derived: tuple[int, ...]  # the derived size's index (a multiple of the smallest), or none
    slot: tuple[int, ...]  # each size's position in its tuple of a series (current or derived)
    is_derived: tuple[bool, ...]
    no_windows: tuple[WindowStats, ...]  # ``current`` of a series without windows
    no_derived: tuple[WindowStats, ...]  # ``derived`` of a series without windows
    # (smallest size, derived size) when those are the only sizes (the default 10 s and 60 s):
    # then a series moving on to its next smallest window takes ``Adding._roll``.
    roll_sizes: tuple[int, int] | None


_LAYOUTS: dict[tuple[int, ...], Layout] = {}


def layout_of(sizes: tuple[int, ...]) -> Layout:
    """The layout of ``sizes`` (one per device with a clock per device: shared, made once)."""
    layout = _LAYOUTS.get(sizes)
    if layout is None:
        layout = _LAYOUTS[sizes] = _lay_out(sizes)
    return layout


def _lay_out(sizes: tuple[int, ...]) -> Layout:
    hot: tuple[int, ...] = ()
    derived: tuple[int, ...] = ()
    if sizes:
        base = min(range(len(sizes)), key=sizes.__getitem__)
        # One derived size, the smallest multiple of the smallest size: with two, a reading
        # late for one but on time for the other would make the accumulator's content
        # depend on a window that a replay may find already closed.
        multiples = [i for i, n in enumerate(sizes) if n > sizes[base] and n % sizes[base] == 0]
        derived = tuple(sorted(multiples, key=sizes.__getitem__)[:1])
        hot = (base, *(i for i in range(len(sizes)) if i != base and i not in derived))
    positions = {i: pos for pos, i in enumerate(hot)}
    positions |= {i: pos for pos, i in enumerate(derived)}
    roll = (sizes[hot[0]], sizes[derived[0]]) if len(hot) == 1 and len(derived) == 1 else None
    return Layout(
        hot,
        derived,
        tuple(positions[i] for i in range(len(sizes))),
        tuple(i in derived for i in range(len(sizes))),
        (NONE,) * len(hot),
        (NONE,) * len(derived),
        roll,
    )


@dataclass(slots=True)
class SealLedger:
    """What sealing has done, per deadline: how far it got in the deadline's list of windows
    (``upto``), the sum of the counts those windows were sealed at (``totals``: unchanged at
    the close means none took a reading since) and the deadlines some of whose seals were kept
    on their windows, not given to a sink (``kept``); all made by ``make``."""

    make: Callable[[ClosedWindow], Any] | None = None
    upto: dict[int, int] = field(default_factory=dict)
    totals: dict[int, int] = field(default_factory=dict)
    kept: set[int] = field(default_factory=set)

    def restart(self, make: Callable[[ClosedWindow], Any]) -> None:
        """Seal with ``make`` from now on: seals of another ``make`` are ignored at the close."""
        self.make = make
        self.upto, self.totals = {}, {}
        self.kept.clear()

    def forget(self, deadline: int) -> None:
        """The deadline's windows are retired."""
        self.upto.pop(deadline, None)
        self.totals.pop(deadline, None)
        self.kept.discard(deadline)

    def clear(self) -> None:
        """Every window is retired."""
        self.upto.clear()
        self.totals.clear()
        self.kept.clear()


class WindowIndex:
    """What every part of :class:`~services.telemetry.windows.partition.PartitionWindows`
    shares: its state (declared here, held by that dataclass's slots) and the moves of the
    index itself: list a new window, make it its series' current one, take it off."""

    if not TYPE_CHECKING:
        # No __dict__: the dataclass that combines the parts declares every slot. (Hidden
        # from mypy, which would take the empty slots for the parts' whole state.)
        __slots__ = ()

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    watermark: int
    open_count: int
    _series: dict[tuple[str, str], Series]
    _closing: dict[int, list[WindowStats]]
    _deadlines: list[int]
    _ints: dict[int, int]
    _emitted: dict[int, int]
    _seals: SealLedger
    _hot: tuple[int, ...]
    _derived: tuple[int, ...]
    _slot: tuple[int, ...]
    _is_derived: tuple[bool, ...]
    _no_windows: tuple[WindowStats, ...]
    _no_derived: tuple[WindowStats, ...]
    _roll_sizes: tuple[int, int] | None

    def _shared(self, n: int) -> int:
        ints = self._ints
        if len(ints) >= _MAX_SHARED_INTS:
            ints.clear()
        return ints.setdefault(n, n)

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

    def _refresh_one(self, series: Series, lo: int, hi: int) -> None:
        """Set the event-time range ``[lo, hi)`` that every current window of ``series`` covers
        (:meth:`_refresh` computes it; :meth:`_roll` and :meth:`_create` know it)."""
        ints = self._ints  # cleared when full by _shared(), which made these ints
        deadline = hi + self.lateness_ms
        series.lo, series.hi = lo, ints.setdefault(hi, hi)
        series.deadline = ints.setdefault(deadline, deadline)

    def _new_series(self, key: tuple[str, str]) -> Series:
        # Interned ids: a million open windows must not each hold copies of them.
        key = (sys.intern(key[0]), sys.intern(key[1]))
        series = self._series[key] = Series(key, self._no_windows, self._no_derived)
        return series

    def _window(self, series: Series, i: int, start: int, offset: int) -> WindowStats:
        """The open window of ``series`` at ``start`` of size ``i`` (not the current one)."""
        for w in series.older:
            if w.start == start and w.size_index == i and w.key is not None:
                return w
        w = self._enlist(series.key, i, start, start + self.sizes_ms[i] + self.lateness_ms, offset)
        current = self._current(series, i)
        if current is NONE:
            self._set_current(series, i, w)
            return w
        if start > current.start:
            # A newer window becomes current; the previous one waits out its lateness.
            self._set_current(series, i, w)
            current.in_older = True
            series.older = (*open_only(series.older), current)
        else:
            # An out-of-order reading opened a window older than the current one.
            w.in_older = True
            series.older = (*open_only(series.older), w)
        return w

    def _current(self, series: Series, i: int) -> WindowStats:
        return (series.derived if self._is_derived[i] else series.current)[self._slot[i]]

    def _set_current(self, series: Series, i: int, w: WindowStats) -> None:
        pos = self._slot[i]
        if self._is_derived[i]:
            derived = series.derived
            series.derived = (*derived[:pos], w, *derived[pos + 1 :])
        else:
            current = series.current
            series.current = (*current[:pos], w, *current[pos + 1 :])

    def _refresh(self, series: Series) -> None:
        # Comparisons, not min()/max(), and the shared ints looked up in place: this runs for
        # every new window, 100 k of them at once at a minute boundary.
        sizes = self.sizes_ms
        lo, hi = -1, sys.maxsize
        for w in series.current:
            if w is NONE or w.scaled:
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

    def _detach(self, series: Series, w: WindowStats) -> None:
        """Take a retired window (``key`` already None) off its series, and drop the series
        once it has no open window left."""
        i = w.size_index
        if self._current(series, i) is w:
            self._set_current(series, i, NONE)
            series.deadline = -1
        older = series.older = open_only(series.older)
        if series.current == self._no_windows and series.derived == self._no_derived:
            if not older:
                del self._series[series.key]
            else:
                # Not expected: a window's older ones of its size retire before it (earlier
                # deadlines). Should one be left, it detaches at its own retirement, which drops
                # the series after the last of them, instead of lingering.
                for o in older:
                    o.in_older = False
