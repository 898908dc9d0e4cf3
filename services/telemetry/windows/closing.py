"""The close of due windows (:class:`Closing`): emit them, then retire them, and the safe
offset meanwhile (see the lifecycle in ``__init__.py``)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, TypeVar, overload

from services.telemetry.windows.model import ClosedWindow, WindowFailed, closed_window, same
from services.telemetry.windows.series import WindowIndex

T = TypeVar("T")


class Closing(WindowIndex):
    """Due windows to emitted, emitted to retired (see the module)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # see WindowIndex

    @overload
    def close(self, make: None = None, limit: int | None = None) -> list[ClosedWindow]: ...
    @overload
    def close(self, make: Callable[[ClosedWindow], T], limit: int | None = None) -> list[T]: ...
    def close(
        self, make: Callable[[ClosedWindow], Any] | None = None, limit: int | None = None
    ) -> list[Any]:
        """:meth:`emit` up to ``limit`` due windows, each turned into ``make(window)`` (the
        window itself without ``make``), then :meth:`retire` them: the whole close in one call,
        for a caller that sends nothing in between (tests, benchmarks).

        Windows left due stay open (and hold back :meth:`safe_offset`) until a later call; no
        reading can reach them meanwhile, since :meth:`add` decides lateness by the watermark.
        """
        out = self.emit(same if make is None else make, limit)
        self.retire()
        return out

    def emit(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int | None = None,
        stop: Container[int] = (),
        failed: WindowFailed | None = None,
    ) -> list[T]:
        """Due to emitted: ``make(window)`` of up to ``limit`` due windows, oldest deadline
        first; a window sealed by :meth:`seal` with the same ``make`` and unchanged since gives
        its seal instead. They stay open until :meth:`retire` (:attr:`has_closed`, and holding
        back :meth:`safe_offset`). Nothing can change what they hold meanwhile (every reading
        for them is late), so a caller can make and send all of a boundary's windows before the
        bookkeeping of their close.

        It stops before a deadline in ``stop`` that has nothing emitted yet: the caller holds
        that deadline's seals (:meth:`seal` with a ``sink``) for :meth:`emit_sealed`.

        A window that ``make`` raises for is given to ``failed`` (key, offset of its first
        reading, exception) and counts as emitted, without a result: the same window raises
        again on every try, and a replay makes the same one, so waiting for it would hold the
        partition's commit forever. Without ``failed`` (or for a MemoryError: the process's
        failure, not the window's) the exception propagates."""
        out: list[T] = []
        append = out.append
        watermark, emitted = self.watermark, self._emitted
        same_make = make is self._seals.make
        sizes = self.sizes_ms
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
                        window = closed_window(s, s.key, sizes[s.size_index])  # type: ignore[arg-type]  # open
                        append(make(window))
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

    def retire(self, limit: int | None = None) -> int:
        """Emitted to retired: take up to ``limit`` emitted windows off their series and
        deadline lists (oldest deadline first), so that :meth:`safe_offset` moves past them;
        returns how many. When that is every open window (a quiet partition, the end of a
        stream), all of them go at once, whatever ``limit``: dropping the partition's series
        costs a fraction of taking each window off its series."""
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
                self._seals.forget(deadline)
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
                # else it stays in its series' older windows, retired, until the series next
                # touches them: one series lookup and tuple fewer per window at a boundary.
            done += len(windows)
            if deadline in emitted:
                break  # the limit, or windows of this deadline still to emit
        self.open_count -= done
        return done

    def emit_and_retire_all(
        self, make: Callable[[ClosedWindow], T], failed: WindowFailed
    ) -> tuple[list[T], int]:
        """:meth:`emit` (no limit) and then :meth:`retire` of every due window, written out for
        windows never sealed (:meth:`seal`) with few due at a time (a device's, see
        ``device_closing.py``), where the setup of those two calls cost more than their
        windows: the same results in the same order, the same windows retired; returns the
        results and how many were retired. A window ``make`` raises for goes to ``failed`` and
        is retired, as there."""
        if self._seals.make is not None:
            return self.emit(make, None, (), failed), self.retire()
        out: list[T] = []
        append = out.append
        heap, closing, emitted = self._deadlines, self._closing, self._emitted
        watermark, sizes = self.watermark, self.sizes_ms
        # Every open window is due: the series all go at once (see retire).
        everything = bool(heap) and max(heap) <= watermark
        done = 0
        while heap and heap[0] <= watermark:
            deadline = heap[0]
            windows = closing[deadline]
            i = emitted.get(deadline, 0)
            for s in windows[i:] if i else windows:
                pend = s.pend
                if pend is not None:
                    s.merge(pend)  # due: see emit
                try:
                    append(make(closed_window(s, s.key, sizes[s.size_index])))  # type: ignore[arg-type]  # open
                except Exception as exc:
                    if isinstance(exc, MemoryError):
                        raise
                    key = s.key
                    assert key is not None  # still open
                    failed((*key, sizes[s.size_index], s.start), s.first_offset, exc)
            # Taken off only once made, so a MemoryError leaves the index whole.
            heapq.heappop(heap)
            del closing[deadline]
            emitted.pop(deadline, None)
            for s in windows:
                key = s.key
                s.pend = None
                s.key = None
                if not everything and not s.in_older:
                    self._detach(self._series[key], s)  # type: ignore[index]  # was open
            done += len(windows)
        if everything:
            self._series.clear()
        self.open_count -= done
        return out, done

    def _retire_all(self) -> int:
        """:meth:`retire` of every open window, all emitted: no series is left with an
        open window, so all of them are dropped (what taking each window off would end in)."""
        done = sum(map(len, self._closing.values()))
        self._closing.clear()
        self._deadlines.clear()
        self._emitted.clear()
        self._seals.clear()
        self._series.clear()
        self.open_count -= done
        return done

    @property
    def has_closed(self) -> bool:
        """Whether some window is closed, due or emitted: its deadline has passed and it is not
        retired yet (the partition's commit waits for it, see ADR 0002)."""
        return self.has_due_at(self.watermark)

    @property
    def has_emitted(self) -> bool:
        """Whether some window is emitted and waits for :meth:`retire`."""
        return any(self._emitted.values())

    @property
    def has_due(self) -> bool:
        """Whether some window is due: its deadline has passed and it is not emitted yet."""
        watermark, emitted = self.watermark, self._emitted
        return any(
            emitted.get(d, 0) < len(self._closing[d]) for d in self._deadlines if d <= watermark
        )

    def has_due_at(self, watermark: int) -> bool:
        """Whether some window would be closed with the watermark at ``watermark``."""
        return bool(self._deadlines) and self._deadlines[0] <= watermark

    def safe_offset(self, next_offset: int) -> int:
        """The offset to commit: below it every reading belongs to a retired window.

        Each deadline's list holds the windows not retired yet, in creation order, which is offset
        order: its first window is its oldest, and the oldest of those is the safe offset."""
        if not self._closing:
            return next_offset
        return min(windows[0].first_offset for windows in self._closing.values())
