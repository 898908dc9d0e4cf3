"""A repaired plan in a fraction of a second, for when the current plan has become wrong (a
machine it counts on went down): the previous plan brought up to date around the outage, and
the greedy rules with a small time budget, the better of them left-shifted.

No CP-SAT: its model alone takes longer to build than this whole plan on a plant of a thousand
operations. The planner publishes this plan at once and the solver's as the next version, so
the shop floor stops being sent to a broken machine within the consumer's and relay's delays,
not the solver's time limit.
"""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter

from services.scheduling.domain.bounds import trivial_lower_bound
from services.scheduling.domain.greedy import best_greedy
from services.scheduling.domain.model import Plan, Problem, SolveStatus
from services.scheduling.domain.objective import Schedule, plan_of
from services.scheduling.domain.repair import left_shift, previous_schedule
from services.scheduling.domain.shop import build_shop
from services.scheduling.domain.solver import best_of

# The fixed-key rules take a few tens of milliseconds on a thousand operations; the
# re-evaluating ones are left to the solver's run.
GREEDY_BUDGET_S = 0.05


def quick_plan(problem: Problem, *, budget_s: float = GREEDY_BUDGET_S) -> Plan:
    """The best of the greedy rules that fit in ``budget_s`` and the previous plan repaired
    (status GREEDY, or EMPTY / INFEASIBLE)."""
    began = perf_counter()
    shop = build_shop(problem)
    if not shop.ops:
        return plan_of(shop, [], SolveStatus.EMPTY, seconds=perf_counter() - began)
    found: list[Schedule] = [best_greedy(shop, budget_s=budget_s)]
    if problem.previous:
        repaired = previous_schedule(shop)
        found += [repaired, left_shift(shop, repaired)]
    final = best_of(shop, found)
    return plan_of(
        shop,
        final,
        SolveStatus.GREEDY,
        lower_bound=trivial_lower_bound(shop),
        seconds=perf_counter() - began,
    )


def after(problem: Problem, plan: Plan) -> Problem:
    """``problem`` with ``plan`` as the previous plan: the solver's run after a quick plan
    counts its moves against what was just published and starts from it."""
    return replace(problem, previous={a.key: a for a in plan.assignments})
