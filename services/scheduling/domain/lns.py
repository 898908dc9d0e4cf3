"""Large neighbourhood search for shops too large for a whole CP-SAT model in the time limit.

Each step frees a few dozen operations (see :mod:`.neighbourhoods`), re-places them with
everything else fixed (:func:`.reinsert.reinsert`) and keeps the result when the plan is no
worse lexicographically; ties go to the plan whose work orders end earlier in total, which is
what lets the search cross the plateaus where many plans share a makespan. The neighbourhood
grows while steps finish well within their time and shrinks while they run out of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from services.scheduling.domain.bounds import ends, makespan
from services.scheduling.domain.neighbourhoods import NEIGHBOURHOODS
from services.scheduling.domain.objective import Schedule, assignments_of, evaluate, rank
from services.scheduling.domain.reinsert import reinsert
from services.scheduling.domain.shop import Shop

STEP_LIMIT_S = 0.3


@dataclass(frozen=True, slots=True)
class Search:
    schedule: Schedule
    iterations: int
    improvements: int


def score(shop: Shop, schedule: Schedule) -> tuple[tuple[int, int, int], int]:
    end = ends(shop, schedule)
    total = sum(end[own[-1]] for own in shop.jobs if own)
    return rank(evaluate(shop.problem, assignments_of(shop, schedule))), total


def improve(
    shop: Shop,
    incumbent: Schedule,
    *,
    deadline: float,
    workers: int,
    seed: int = 0,
    on_makespan: Callable[[int], None] | None = None,
) -> Search:
    rng = random.Random(seed)
    n = len(shop.ops)
    best = score(shop, incumbent)
    size = float(min(n, 30))
    iterations = improvements = 0
    while (left := deadline - perf_counter()) > 0.05 and n > 0:
        kind = NEIGHBOURHOODS[iterations % len(NEIGHBOURHOODS)]
        free = kind(shop, incumbent, max(2, int(size)), rng)
        began = perf_counter()
        found = reinsert(
            shop, incumbent, free, time_limit_s=min(STEP_LIMIT_S, left), workers=workers
        )
        quick = perf_counter() - began < STEP_LIMIT_S / 2
        size = min(float(n), size * 1.1 + 1) if quick else max(4.0, size * 0.8)
        iterations += 1
        if found is None:
            continue
        now = score(shop, found)
        if now <= best:
            if now[0] < best[0]:
                improvements += 1
                if on_makespan is not None:
                    on_makespan(makespan(shop, found))
            incumbent, best = found, now
    return Search(incumbent, iterations, improvements)
