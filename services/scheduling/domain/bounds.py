"""Makespan lower bounds that need no search (CP-SAT's own bound is added when it proves one)."""

from __future__ import annotations

from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop

# Machine sets tried for the load bound, the largest first (they confine the most work).
MAX_GROUPS = 1000


def trivial_lower_bound(shop: Shop) -> int:
    """The largest of: any work order's chain of shortest durations from its earliest start;
    for each set of machines some operation may choose from, the shortest work of every
    operation confined to that set spread evenly over it (a single machine's own work, a work
    centre's, the whole plant's); the end of the frozen operations."""
    bound = max(shop.fixed_end, 0)
    for own in shop.jobs:
        end = 0
        for i in own:
            end = max(end, shop.ops[i].lb) + shop.ops[i].min_duration
        bound = max(bound, end)
    return max(bound, _group_load_bound(shop))


def _group_load_bound(shop: Shop) -> int:
    work: dict[frozenset[int], int] = {}
    for op in shop.ops:
        group = frozenset(m for m, _ in op.options)
        work[group] = work.get(group, 0) + op.min_duration
    candidates = sorted(work, key=len, reverse=True)[:MAX_GROUPS]
    candidates.append(frozenset(range(len(shop.machine_ids))))
    bound = 0
    for machines in candidates:
        if machines:
            load = sum(w for group, w in work.items() if group <= machines)
            first = -(-load // len(machines))
            # blocked time before that bound takes capacity too (the makespan is at least it)
            blocked = sum(min(e, first) - s for m in machines for s, e in shop.busy[m] if s < first)
            bound = max(bound, -(-(load + blocked) // len(machines)))
    return bound


def ends(shop: Shop, schedule: Schedule) -> list[int]:
    return [s + dict(shop.ops[i].options)[m] for i, (m, s) in enumerate(schedule)]


def makespan(shop: Shop, schedule: Schedule) -> int:
    """Relative makespan of ``schedule`` with the frozen operations."""
    return max([max(shop.fixed_end, 0), *ends(shop, schedule)])
