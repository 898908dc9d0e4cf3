"""Schedules made from another: the previous plan brought up to date, and left-shifting.

Both place operations one by one at the earliest free slot of a given machine, so they keep a
plan's shape (machines and order) while making it feasible and tight.
"""

from __future__ import annotations

from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop
from services.scheduling.domain.timeline import Timeline


def previous_schedule(shop: Shop) -> list[tuple[int, int]]:
    """The previous plan where it still holds: each operation on its previous machine (when
    still eligible) no earlier than its previous start, in the previous order; operations the
    previous plan lacks go where they finish first, after the others."""
    index = {m: k for k, m in enumerate(shop.machine_ids)}
    wanted: list[tuple[int, int] | None] = []
    for op in shop.ops:
        before = shop.problem.previous.get(op.key)
        machine = index.get(before.machine_id, -1) if before is not None else -1
        eligible = any(m == machine for m, _ in op.options)
        wanted.append((machine, before.start - shop.origin) if before and eligible else None)
    order = sorted(range(len(shop.ops)), key=lambda i: (_at(wanted[i]), i))
    lines = [Timeline(b) for b in shop.busy]
    result: list[tuple[int, int] | None] = [None] * len(shop.ops)
    for first in order:
        chain = [first]
        while (pred := shop.ops[chain[-1]].pred) is not None and result[pred] is None:
            chain.append(pred)
        for i in reversed(chain):
            if result[i] is None:
                result[i] = _place(shop, lines, result, i, wanted[i])
    return [r for r in result if r is not None]


def _at(wanted: tuple[int, int] | None) -> float:
    return float("inf") if wanted is None else wanted[1]


def _place(
    shop: Shop,
    lines: list[Timeline],
    result: list[tuple[int, int] | None],
    i: int,
    wanted: tuple[int, int] | None,
) -> tuple[int, int]:
    op = shop.ops[i]
    ready = op.lb
    if op.pred is not None and (placed := result[op.pred]) is not None:
        ready = max(ready, placed[1] + dict(shop.ops[op.pred].options)[placed[0]])
    options = op.options
    if wanted is not None:
        ready = max(ready, wanted[1])
        options = tuple(o for o in options if o[0] == wanted[0])
    best = (0, 0, -1)
    for m, d in options:
        s = lines[m].earliest(ready, d)
        if best[2] < 0 or (s + d, s) < best[:2]:
            best = (s + d, s, m)
    lines[best[2]].block(best[1], best[0])
    return (best[2], best[1])


def left_shift(shop: Shop, schedule: Schedule) -> list[tuple[int, int]]:
    """Every operation as early as its machine, order and predecessors allow, except those
    exactly where the previous plan had them (moving those would count as a move). No end moves
    later, so neither tardiness nor makespan can grow."""
    index = {m: k for k, m in enumerate(shop.machine_ids)}
    lines = [Timeline(b) for b in shop.busy]
    anchored: set[int] = set()
    for i, (m, s) in enumerate(schedule):
        before = shop.problem.previous.get(shop.ops[i].key)
        if before is not None and (index.get(before.machine_id), before.start - shop.origin) == (
            m,
            s,
        ):
            anchored.add(i)
            lines[m].block(s, s + dict(shop.ops[i].options)[m])
    result = list(schedule)
    machine_end = [0] * len(shop.machine_ids)
    job_end: dict[int, int] = {}
    for i in sorted(range(len(schedule)), key=lambda k: (schedule[k][1], k)):
        m, s = schedule[i]
        op = shop.ops[i]
        d = dict(op.options)[m]
        if i not in anchored:
            ready = max(op.lb, machine_end[m], job_end.get(op.job, 0))
            s = lines[m].earliest(ready, d)
            lines[m].block(s, s + d)
            result[i] = (m, s)
        machine_end[m] = max(machine_end[m], s + d)
        job_end[op.job] = s + d
    return result
