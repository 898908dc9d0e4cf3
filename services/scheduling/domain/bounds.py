"""Makespan lower bounds that need no search (CP-SAT's own bound is added when it proves one)."""

from __future__ import annotations

from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop


def trivial_lower_bound(shop: Shop) -> int:
    """The largest of: any work order's chain of shortest durations from its earliest start;
    the work of operations with a single eligible machine, per machine; all the shortest work
    spread evenly over every machine; the end of the frozen operations."""
    bound = max(shop.fixed_end, 0)
    for own in shop.jobs:
        end = 0
        for i in own:
            end = max(end, shop.ops[i].lb) + shop.ops[i].min_duration
        bound = max(bound, end)
    load = [0] * len(shop.machine_ids)
    for op in shop.ops:
        if len(op.options) == 1:
            load[op.options[0][0]] += op.options[0][1]
    bound = max(bound, *load, 0)
    if shop.machine_ids:
        total = sum(op.min_duration for op in shop.ops)
        bound = max(bound, -(-total // len(shop.machine_ids)))
    return bound


def ends(shop: Shop, schedule: Schedule) -> list[int]:
    return [s + dict(shop.ops[i].options)[m] for i, (m, s) in enumerate(schedule)]


def makespan(shop: Shop, schedule: Schedule) -> int:
    """Relative makespan of ``schedule`` with the frozen operations."""
    return max([max(shop.fixed_end, 0), *ends(shop, schedule)])
