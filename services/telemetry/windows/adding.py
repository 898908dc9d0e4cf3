"""The general path of adding a reading (:class:`Adding`): whatever the hot loop of
``partition.py`` does not take, a new window, an out-of-order or late reading, decided from
scratch; and the two commonest of those with the default sizes (one smallest and one derived
size), written out: a series' next smallest window (``_roll``, once every ten readings at one
reading a second) and a new series (``_create``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from services.telemetry.windows.series import NONE, Series, WindowIndex, open_only
from services.telemetry.windows.stats import WindowStats


class Adding(WindowIndex):
    """The slow path of :meth:`PartitionWindows.add_records` (see the module)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # see WindowIndex

    def _add(
        self, series: Series | None, key: tuple[str, str], ts: int, value: float, offset: int
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
            # Decided by the watermark alone, not by whether emit() ran yet, so that a
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

    def _roll(self, series: Series, ts: int, value: float, offset: int) -> bool:
        """The commonest reading off the fast path, written out: the series' first reading of
        its next smallest window, on time, whose accumulator is the smallest window it leaves
        and owed to the current derived window, with no older open window it concerns; inside
        that derived window, or the first of the next one (a sparse series, one reading per
        smallest window, opens a derived window every few readings). What :meth:`_add` would
        do (the same operations in the same order, so the same bits); False, having changed
        nothing, for anything else."""
        size, dsize = self._roll_sizes  # type: ignore[misc]  # set when this is called
        cur = series.current[0]
        start = ts - ts % size
        if cur is NONE or start <= cur.start:
            return False
        lateness = self.lateness_ms
        if start + size + lateness <= self.watermark:
            return False  # late for its smallest window (so on time for the derived one)
        d = series.derived[0]
        if d is NONE or d.pend is not cur or series.acc is not cur:
            return False
        dstart = ts - ts % dsize
        if dstart == d.start:
            lowest = start
        elif dstart > d.start:
            lowest = dstart  # _window() must find no older window for the new derived one
        else:
            return False
        older = series.older
        for o in older:
            # An older window still open (due by the clock, not yet retired: a sparse
            # series' previous window) changes nothing here unless the accumulator is owed
            # to it or _window() would find it for this reading.
            if o.pend is cur or (o.key is not None and o.start >= lowest):
                return False
        # _window(): the new smallest window, current; the one it follows waits out its lateness.
        w = self._enlist(series.key, self._hot[0], start, start + size + lateness, offset)
        series.current = (w,)
        cur.in_older = True
        older = (*open_only(older), cur) if older else (cur,)
        w.add(ts, value)
        if dstart == d.start:
            series.older = older
            current = d
        else:
            # _add_derived()'s _window(): the new derived window, current; the one it follows
            # waits out its lateness.
            current = self._enlist(
                series.key, self._derived[0], dstart, dstart + dsize + lateness, offset
            )
            series.derived = (current,)
            d.in_older = True
            series.older = (*older, d)
        # _add_derived(): the accumulator (the window left) is complete, merged into the
        # derived window it was owed to; the new smallest window accumulates for the current one.
        d.merge(cur)
        d.pend = None
        current.pend = series.acc = w
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

    def _add_derived(
        self,
        series: Series | None,
        key: tuple[str, str],
        ts: int,
        value: float,
        offset: int,
        *,
        base: WindowStats | None,
    ) -> tuple[Series | None, int]:
        """The derived size's part of :meth:`_add`: into the series' accumulator, or straight
        into the larger window (see "Sliced windows" in series.py); returns its late mask."""
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
                self._merge_acc(series, acc)
            if base is None:
                # Late for the smallest size, on time for the larger: accumulate apart.
                base = WindowStats(offset, self._shared(start), self._hot[0])
                base.add(ts, value)
            w.pend = series.acc = base
        else:
            w.add(ts, value)  # a range before the accumulator's
        return series, 0

    def _fork(self, series: Series, acc: WindowStats) -> WindowStats:
        """A copy of the accumulator that is also an open window, to go on with apart from it."""
        copy = msgspec.structs.replace(acc, key=None, sealed=None, sealed_count=-1)
        for w in (*series.derived, *series.older):
            if w.pend is acc:
                w.pend = copy
        series.acc = copy
        return copy

    def _merge_acc(self, series: Series, acc: WindowStats) -> None:
        """Merge the accumulator into every window it is still owed to."""
        for w in (*series.derived, *series.older):
            if w.pend is acc:
                w.merge(acc)
                w.pend = None
