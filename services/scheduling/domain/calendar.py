"""When a machine cannot work: down or in maintenance, planned maintenance windows, and the
time outside its work centre's shifts. Pure interval arithmetic in epoch seconds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from services.scheduling.domain.model import Interval
from services.scheduling.domain.state import Condition

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class ShiftRule:
    """Working time ``[start, end)`` UTC on ``weekdays`` (0 = Monday); past midnight when
    ``end <= start``."""

    weekdays: frozenset[int]
    start: time
    end: time


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, disjoint intervals covering the same time (touching ones joined)."""
    out: list[Interval] = []
    for iv in sorted((i for i in intervals if i.end > i.start), key=lambda i: (i.start, i.end)):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return tuple(out)


def outage(condition: Condition | None, now: int, repair_s: int) -> Interval | None:
    """A DOWN or MAINTENANCE machine is unavailable from ``since`` until its expected repair;
    one still down past that is expected back half a repair time from now, so the plan never
    counts on a machine that is known to be broken right now."""
    if condition is None or condition.available:
        return None
    end = max(condition.since + repair_s, now + max(1, repair_s // 2))
    return Interval(condition.since, end)


def off_shift(shifts: Sequence[ShiftRule], now: int, days: int) -> tuple[Interval, ...]:
    """The time outside ``shifts`` from a day before ``now`` to ``days`` after it (beyond
    that the machine counts as available); nothing when the work centre has no shifts."""
    if not shifts:
        return ()
    first = datetime.fromtimestamp(now, UTC).date() - timedelta(days=1)
    lo = int(datetime.combine(first, time(), UTC).timestamp())
    hi = lo + (days + 2) * DAY_S
    working: list[Interval] = []
    for d in range(days + 2):
        day = first + timedelta(days=d)
        midnight = lo + d * DAY_S
        for rule in shifts:
            if day.weekday() not in rule.weekdays:
                continue
            start = midnight + _seconds(rule.start)
            end = midnight + _seconds(rule.end)
            if end <= start:
                end += DAY_S
            working.append(Interval(start, end))
    gaps: list[Interval] = []
    cursor = lo
    for iv in merge(working):
        if iv.start > cursor:
            gaps.append(Interval(cursor, iv.start))
        cursor = max(cursor, iv.end)
    if cursor < hi:
        gaps.append(Interval(cursor, hi))
    return tuple(gaps)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second
