"""Overall equipment effectiveness of one machine over one period, from plain values.

Availability: time RUNNING against planned time (the period minus the plan's calendar: time
off shift and planned maintenance). Performance: the routing's ideal time of the operations
completed in the period against their actual time (start to completion), at most 1. Quality:
good units against all units completed. Each factor is None when its denominator is zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.scheduling.domain.model import Interval


@dataclass(frozen=True, slots=True)
class Completion:
    ideal_s: int
    actual_s: int
    good: int
    scrap: int


@dataclass(frozen=True, slots=True)
class Oee:
    planned_s: int
    running_s: int
    ideal_s: int
    actual_s: int
    good: int
    scrap: int
    availability: float | None
    performance: float | None
    quality: float | None

    @property
    def oee(self) -> float | None:
        a, p, q = self.availability, self.performance, self.quality
        if a is None or p is None or q is None:
            return None
        return a * p * q


def overlap(a: Interval, b: Interval) -> int:
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def planned(period: Interval, off: Sequence[Interval]) -> list[Interval]:
    """The period minus ``off`` (sorted, disjoint intervals)."""
    out, cursor = [], period.start
    for iv in off:
        if iv.end <= cursor or iv.start >= period.end:
            continue
        if iv.start > cursor:
            out.append(Interval(cursor, iv.start))
        cursor = max(cursor, iv.end)
    if cursor < period.end:
        out.append(Interval(cursor, period.end))
    return out


def running(states: Sequence[tuple[int, str]], within: Sequence[Interval], until: int) -> int:
    """Seconds in RUNNING inside ``within``; ``states`` are ``(since, state)`` in time order,
    the first one at or before the period (unknown before it: not running)."""
    total = 0
    for n, (since, state) in enumerate(states):
        if state != "RUNNING":
            continue
        end = states[n + 1][0] if n + 1 < len(states) else until
        total += sum(overlap(Interval(since, end), iv) for iv in within)
    return total


def ratio(num: int, den: int) -> float | None:
    return None if den <= 0 else min(1.0, num / den)


def oee(
    period: Interval,
    off: Sequence[Interval],
    states: Sequence[tuple[int, str]],
    completions: Sequence[Completion],
) -> Oee:
    window = planned(period, off)
    planned_s = sum(iv.end - iv.start for iv in window)
    running_s = running(states, window, period.end)
    ideal = sum(c.ideal_s for c in completions)
    actual = sum(c.actual_s for c in completions)
    good = sum(c.good for c in completions)
    scrap = sum(c.scrap for c in completions)
    return Oee(
        planned_s=planned_s,
        running_s=running_s,
        ideal_s=ideal,
        actual_s=actual,
        good=good,
        scrap=scrap,
        availability=ratio(running_s, planned_s),
        performance=ratio(ideal, actual),
        quality=ratio(good, good + scrap),
    )
