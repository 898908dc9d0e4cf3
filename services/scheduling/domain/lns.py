"""Large neighbourhood search: re-optimise a part of the incumbent with short CP-SAT solves.

On large shops a whole model with a few workers spends its budget far from the optimum; fixing
most operations' machines and order and freeing a few dozen (some work orders, a stretch of time,
a few machines, the critical path's surroundings) gives sub-problems CP-SAT solves to optimality
in a fraction of a second. Each accepted solution is at least as good as the incumbent (ties are
accepted, so the search drifts across plateaus). The neighbourhood grows while sub-problems
solve to optimality and shrinks while they time out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from time import perf_counter

from services.scheduling.domain.bounds import ends, makespan
from services.scheduling.domain.cpsat_model import (
    Goal,
    Stage,
    build,
    moves_weight,
    solve_built,
    tiebreak_scale,
)
from services.scheduling.domain.cpsat_model import tardiness as model_tardiness
from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop

Neighbourhood = Callable[[Shop, Schedule, int, random.Random], set[int]]


@dataclass(frozen=True, slots=True)
class Search:
    schedule: Schedule
    value: int
    iterations: int
    improvements: int


def stage_value(shop: Shop, goal: Goal, schedule: Schedule) -> int:
    """The stage objective as the model computes it."""
    if goal.stage is Stage.TARDINESS:
        return model_tardiness(shop, schedule)
    moved = 0
    if goal.stable:
        index = {m: k for k, m in enumerate(shop.machine_ids)}
        for i, (m, s) in enumerate(schedule):
            before = shop.problem.previous.get(shop.ops[i].key)
            if before is not None:
                moved += (index.get(before.machine_id), before.start - shop.origin) != (m, s)
    return makespan(shop, schedule) * moves_weight(shop) + moved


def search_value(shop: Shop, goal: Goal, schedule: Schedule) -> int:
    """The sub-models' objective: the stage value, ties broken by the sum of work orders' ends."""
    scale = tiebreak_scale(shop, goal)
    if scale == 1:
        return stage_value(shop, goal, schedule)
    end = ends(shop, schedule)
    return stage_value(shop, goal, schedule) * scale + sum(end[own[-1]] for own in shop.jobs if own)


def improve(
    shop: Shop,
    goal: Goal,
    incumbent: Schedule,
    *,
    deadline: float,
    workers: int,
    seed: int = 0,
    on_makespan: Callable[[int], None] | None = None,
) -> Search:
    rng = random.Random(seed)
    n = len(shop.ops)
    goal = replace(goal, tiebreak=True)
    value = search_value(shop, goal, incumbent)
    size = float(min(n, max(12, n // 8)))
    sub_limit = 0.3 if n < 1000 else 0.8
    iterations = improvements = 0
    while (left := deadline - perf_counter()) > 0.05 and n > 0:
        kind = NEIGHBOURHOODS[iterations % len(NEIGHBOURHOODS)]
        free = kind(shop, incumbent, max(2, int(size)), rng)
        built = build(shop, goal, hint=incumbent, free=free)
        out = solve_built(
            built, time_limit_s=min(sub_limit, left), workers=workers, seed=iterations
        )
        iterations += 1
        if out.schedule is not None and out.value is not None and out.value <= value:
            if out.value < value:
                improvements += 1
                if on_makespan is not None:
                    on_makespan(makespan(shop, out.schedule))
            incumbent, value = out.schedule, out.value
        size = min(float(n), size * 1.15 + 1) if out.optimal else max(4.0, size * 0.85)
    return Search(incumbent, value, iterations, improvements)


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
