"""One LNS step that stays small however large the shop: re-place a few operations around
everything else fixed in time, then left-shift the whole schedule.

Operations outside ``free`` keep their machine and times (constant blocked time), so the
sub-model holds only the freed operations and the machines they may use; each freed operation
stays between its work order's neighbours (after the one before, before the one after) and the
sub-model pulls the freed operations as early as it can, weighted by their work order's
tardiness weight. The left shift then lets the time this frees ripple through the plan.
"""

from __future__ import annotations

from collections.abc import Collection

from ortools.sat.python import cp_model

from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.repair import left_shift
from services.scheduling.domain.shop import Shop

FAR = 2**40  # no later operation of the work order stays put: no upper bound


def reinsert(
    shop: Shop, schedule: Schedule, free: Collection[int], *, time_limit_s: float, workers: int
) -> Schedule | None:
    """``schedule`` with ``free`` re-placed and everything left-shifted, or None when CP-SAT
    found nothing within the limit."""
    model = cp_model.CpModel()
    duration = [dict(op.options) for op in shop.ops]
    ends_at = [s + duration[i][m] for i, (m, s) in enumerate(schedule)]
    successor = {op.pred: i for i, op in enumerate(shop.ops) if op.pred is not None}
    touched = {m for i in free for m, _ in shop.ops[i].options}
    per_machine: dict[int, list[cp_model.IntervalVar]] = {m: [] for m in touched}
    for i, (m, s) in enumerate(schedule):
        if i not in free and m in touched:
            per_machine[m].append(model.new_fixed_size_interval_var(s, duration[i][m], ""))
    for m in touched:
        per_machine[m] += [model.new_fixed_size_interval_var(s, e - s, "") for s, e in shop.busy[m]]
    starts: dict[int, cp_model.IntVar] = {}
    ends: dict[int, cp_model.IntVar] = {}
    choice: dict[int, list[tuple[int, cp_model.IntVar]]] = {}
    for i in sorted(free):  # a work order's operations in routing order
        op = shop.ops[i]
        lo = max(op.lb, ends_at[op.pred] if op.pred is not None and op.pred not in free else 0)
        nxt = successor.get(i)
        hi = max(schedule[nxt][1] if nxt is not None and nxt not in free else FAR, lo)
        starts[i] = model.new_int_var(lo, hi, "")
        ends[i] = model.new_int_var(lo, hi, "")
        choice[i] = []
        for m, d in op.options:
            lit = model.new_bool_var("")
            per_machine[m].append(model.new_optional_interval_var(starts[i], d, ends[i], lit, ""))
            choice[i].append((m, lit))
            model.add_hint(lit, m == schedule[i][0])
        model.add_exactly_one(lit for _, lit in choice[i])
        model.add_hint(starts[i], schedule[i][1])
        model.add_hint(ends[i], ends_at[i])
        if op.pred is not None and op.pred in free:
            model.add(starts[i] >= ends[op.pred])
    for intervals in per_machine.values():
        model.add_no_overlap(intervals)
    weight = [shop.weight[op.job] for op in shop.ops]
    model.minimize(cp_model.LinearExpr.weighted_sum(list(ends.values()), [weight[i] for i in ends]))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.01)
    solver.parameters.num_workers = max(workers, 1)
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    moved = list(schedule)
    for i in free:
        machine = next(m for m, lit in choice[i] if solver.boolean_value(lit))
        moved[i] = (machine, solver.value(starts[i]))
    return left_shift(shop, moved)
