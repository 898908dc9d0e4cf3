"""One machine's blocked time, for placing operations at the earliest free slot (no pre-emption)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable


class Timeline:
    """Sorted, disjoint, merged ``[start, end)`` intervals a machine cannot take work in."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, blocked: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in blocked:
            self.block(start, end)

    def earliest(self, ready: int, duration: int) -> int:
        """The earliest start ``>= ready`` of ``duration`` seconds that fits between blocks."""
        start = ready
        i = bisect_right(self._ends, ready)
        starts, ends = self._starts, self._ends
        n = len(starts)
        while i < n:
            if start + duration <= starts[i]:
                return start
            start = max(start, ends[i])
            i += 1
        return start

    def block(self, start: int, end: int) -> None:
        if end <= start:
            return
        starts, ends = self._starts, self._ends
        # blocks touching or overlapping [start, end) are merged into one
        lo = bisect_right(ends, start - 1)
        hi = bisect_right(starts, end)
        if lo < hi:
            start = min(start, starts[lo])
            end = max(end, ends[hi - 1])
        starts[lo:hi] = [start]
        ends[lo:hi] = [end]
