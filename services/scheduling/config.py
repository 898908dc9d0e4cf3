"""The planning rules the settings describe, in the domain's terms."""

from __future__ import annotations

from collections import defaultdict

from services.scheduling.domain.calendar import ShiftRule, merge
from services.scheduling.domain.model import Interval
from services.scheduling.domain.problem import Rules
from services.scheduling.settings import SchedulingSettings


def rules_of(settings: SchedulingSettings) -> Rules:
    windows: dict[str, list[Interval]] = defaultdict(list)
    for w in settings.scheduling_maintenance:
        windows[w.machine_id].append(Interval(int(w.start.timestamp()), int(w.end.timestamp())))
    return Rules(
        repair_s=settings.scheduling_repair_s,
        duration_scale=settings.scheduling_duration_scale,
        maintenance={k: merge(v) for k, v in windows.items()},
        shifts={
            centre: tuple(ShiftRule(frozenset(s.weekdays), s.start, s.end) for s in shifts)
            for centre, shifts in settings.scheduling_calendar.items()
        },
        calendar_days=settings.scheduling_calendar_days,
    )
