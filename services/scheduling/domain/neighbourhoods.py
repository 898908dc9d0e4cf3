"""Neighbourhoods for large neighbourhood search: which operations to free in one step.

Each takes the incumbent and a target size and returns operation indices: some work orders, a
stretch of time, all the work of a few machines, or where the makespan is decided (a critical
path and what starts around it).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from services.scheduling.domain.bounds import ends
from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop

Neighbourhood = Callable[[Shop, Schedule, int, random.Random], set[int]]


def random_jobs(shop: Shop, schedule: Schedule, size: int, rng: random.Random) -> set[int]:
    jobs = [own for own in shop.jobs if own]
    rng.shuffle(jobs)
    free: set[int] = set()
    for own in jobs:
        if len(free) >= size:
            break
        free.update(own)
    return free


def time_window(shop: Shop, schedule: Schedule, size: int, rng: random.Random) -> set[int]:
    by_start = sorted(range(len(schedule)), key=lambda i: schedule[i][1])
    first = rng.randrange(max(1, len(by_start) - size + 1))
    return set(by_start[first : first + size])


def machines(shop: Shop, schedule: Schedule, size: int, rng: random.Random) -> set[int]:
    on: dict[int, list[int]] = {}
    for i, (m, _) in enumerate(schedule):
        on.setdefault(m, []).append(i)
    picked = list(on)
    rng.shuffle(picked)
    free: set[int] = set()
    for m in picked:
        if len(free) >= size:
            break
        free.update(on[m])
    return free


def critical_window(shop: Shop, schedule: Schedule, size: int, rng: random.Random) -> set[int]:
    """Operations starting around one operation of a critical path (where the makespan is
    decided, so freeing them is what can shorten it)."""
    end = ends(shop, schedule)
    path = critical_path(shop, schedule, end)
    if not path:
        return time_window(shop, schedule, size, rng)
    centre = schedule[rng.choice(path)][1]
    by_distance = sorted(range(len(schedule)), key=lambda i: abs(schedule[i][1] - centre))
    return set(by_distance[:size])


def critical_path(shop: Shop, schedule: Schedule, end: list[int]) -> list[int]:
    if not end:
        return []
    last = max(range(len(end)), key=end.__getitem__)
    finishing_at: dict[tuple[int, int], int] = {(m, end[i]): i for i, (m, _) in enumerate(schedule)}
    path = [last]
    while len(path) <= len(end):
        i = path[-1]
        m, s = schedule[i]
        pred = shop.ops[i].pred
        if pred is not None and end[pred] == s:
            path.append(pred)
        elif (m, s) in finishing_at and finishing_at[(m, s)] != i:
            path.append(finishing_at[(m, s)])
        else:
            break
    return path


def whole_critical_path(shop: Shop, schedule: Schedule, size: int, rng: random.Random) -> set[int]:
    """A critical path and, around each of its operations, the ones starting closest."""
    end = ends(shop, schedule)
    path = critical_path(shop, schedule, end)
    free = set(path)
    by_start = sorted(range(len(schedule)), key=lambda i: schedule[i][1])
    position = {op: k for k, op in enumerate(by_start)}
    extra = max(1, (size - len(free)) // max(len(path), 1))
    for op in path:
        k = position[op]
        free.update(by_start[max(0, k - extra // 2) : k + extra // 2 + 1])
    return free


NEIGHBOURHOODS: tuple[Neighbourhood, ...] = (
    whole_critical_path,
    random_jobs,
    critical_window,
    time_window,
    machines,
)
