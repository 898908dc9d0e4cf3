"""``solve``: greedy dispatch, then CP-SAT improving it within a time limit.

Up to ``WHOLE_MODEL_UP_TO`` operations, stages follow the lexicographic objective: weighted
tardiness first (only when the best plan so far is late), then makespan with fewest moves
against the previous plan, tardiness capped at its best. In each stage the whole model, hinted
with the incumbent, first searches with CP-SAT's default portfolio (which proves small shops
optimal and yields a bound), then with every worker on CP-SAT's neighbourhood search from the
best plan so far. Larger shops, whose whole model CP-SAT cannot even presolve in a time limit of
seconds, get this module's own LNS of small sub-models. The result is never worse than the
greedy plan or the previous plan brought up to date, and is left-shifted so no operation waits
without a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter

from services.scheduling.domain.bounds import makespan, trivial_lower_bound
from services.scheduling.domain.cpsat_model import (
    Built,
    Goal,
    Outcome,
    Stage,
    build,
    moves_weight,
    set_hint,
    solve_built,
    stage_value,
)
from services.scheduling.domain.cpsat_model import tardiness as model_tardiness
from services.scheduling.domain.greedy import best_greedy
from services.scheduling.domain.lns import improve
from services.scheduling.domain.model import Plan, Problem, SolveStatus
from services.scheduling.domain.objective import Schedule, assignments_of, evaluate, plan_of, rank
from services.scheduling.domain.repair import left_shift, previous_schedule
from services.scheduling.domain.shop import Shop, build_shop

WHOLE_MODEL_UP_TO = 2000  # operations
# After this share of the time limit no further greedy rule starts (the first always runs).
GREEDY_SHARE = 0.2
# Share of a stage's time for the default portfolio (proofs, bounds) before neighbourhood search
# alone, on flexible shops. A job shop (one machine per operation) keeps the default portfolio
# throughout: there its neighbourhood search alone often did not improve on the hint at all.
PROOF_SHARE = 0.5
# Building and hinting the whole model costs about this much per operation (Python-side, before
# CP-SAT starts). A stage runs only when the time left is at least twice its build, so a short
# limit is not spent on a model CP-SAT gets no time to search.
BUILD_S_PER_OP = 0.0002


@dataclass(frozen=True, slots=True)
class StageResult:
    schedule: Schedule
    optimal: bool
    searched: bool  # CP-SAT returned a solution (found or confirmed the incumbent)
    bound: int | None  # proven bound on the stage objective


def solve(
    problem: Problem,
    *,
    time_limit_s: float,
    workers: int,
    progress: Callable[[float, int], None] | None = None,
) -> Plan:
    """The best plan found within ``time_limit_s``; ``progress`` (seconds since the call,
    makespan) hears of each better plan as it is found, the greedy one first."""
    began = perf_counter()
    deadline = began + time_limit_s
    shop = build_shop(problem)
    if not shop.ops:
        return plan_of(shop, [], SolveStatus.EMPTY, seconds=perf_counter() - began)
    greedy = best_greedy(shop, budget_s=time_limit_s * GREEDY_SHARE)
    report = None if progress is None else (lambda c: progress(perf_counter() - began, c))
    if report is not None:
        report(makespan(shop, greedy))
    incumbent = best_of(shop, [greedy, *([previous_schedule(shop)] if problem.previous else [])])
    lower_bound = trivial_lower_bound(shop)
    if len(shop.ops) > WHOLE_MODEL_UP_TO:
        search = improve(shop, incumbent, deadline=deadline, workers=workers, on_makespan=report)
        final = best_of(shop, [greedy, incumbent, search.schedule])
        status = SolveStatus.FEASIBLE if search.iterations else SolveStatus.GREEDY
        return plan_of(shop, final, status, lower_bound=lower_bound, seconds=perf_counter() - began)
    optimal, searched = True, False
    build_s = 2 * BUILD_S_PER_OP * len(shop.ops)
    if model_tardiness(shop, incumbent) > 0 and began + time_limit_s / 2 - perf_counter() > build_s:
        half = began + time_limit_s / 2
        goal = Goal(Stage.TARDINESS, _loose_horizon(shop, incumbent))
        result = optimise(shop, goal, incumbent, deadline=half, workers=workers, report=None)
        incumbent, optimal, searched = result.schedule, result.optimal, result.searched
    if deadline - perf_counter() <= build_s:
        final = best_of(shop, [greedy, left_shift(shop, incumbent), incumbent])
        status = SolveStatus.FEASIBLE if searched else SolveStatus.GREEDY
        return plan_of(shop, final, status, lower_bound=lower_bound, seconds=perf_counter() - began)
    cap = model_tardiness(shop, incumbent)
    goal = Goal(Stage.MAKESPAN, makespan(shop, incumbent), tardiness_cap=cap)
    result = optimise(shop, goal, incumbent, deadline=deadline, workers=workers, report=report)
    optimal, searched = optimal and result.optimal, searched or result.searched
    if result.bound is not None and all(d is None for d in shop.due):
        weight = moves_weight(shop)
        lower_bound = max(lower_bound, -(-(result.bound - weight + 1) // weight))
    final = best_of(shop, [greedy, left_shift(shop, result.schedule), result.schedule])
    status = (
        SolveStatus.OPTIMAL if optimal and searched
        else SolveStatus.FEASIBLE if searched
        else SolveStatus.GREEDY
    )  # fmt: skip
    return plan_of(shop, final, status, lower_bound=lower_bound, seconds=perf_counter() - began)


def best_of(shop: Shop, schedules: list[Schedule]) -> Schedule:
    """The lexicographically best; the earliest of equals (so the greedy plan needs to be beaten,
    not matched, to be replaced)."""
    return min(schedules, key=lambda s: rank(evaluate(shop.problem, assignments_of(shop, s))))


def optimise(
    shop: Shop,
    goal: Goal,
    incumbent: Schedule,
    *,
    deadline: float,
    workers: int,
    report: Callable[[int], None] | None,
) -> StageResult:
    """One stage on the whole model: the default portfolio, then neighbourhood search only."""
    built = build(shop, goal, hint=incumbent)
    flexible = any(len(op.options) > 1 for op in shop.ops)
    proof = solve_built(
        built,
        time_limit_s=(deadline - perf_counter()) * (PROOF_SHARE if flexible else 1.0),
        workers=workers,
        on_makespan=report,
    )
    incumbent = _kept(shop, goal, incumbent, proof)
    if proof.optimal:
        return StageResult(incumbent, True, True, proof.bound)
    searched = proof.schedule is not None
    if deadline - perf_counter() > 0.05:
        out = _search(built, shop, incumbent, deadline=deadline, workers=workers, report=report)
        incumbent = _kept(shop, goal, incumbent, out)
        searched = searched or out.schedule is not None
    return StageResult(incumbent, False, searched, proof.bound)


def _search(
    built: Built,
    shop: Shop,
    incumbent: Schedule,
    *,
    deadline: float,
    workers: int,
    report: Callable[[int], None] | None,
) -> Outcome:
    set_hint(built, shop, incumbent)
    return solve_built(
        built,
        time_limit_s=deadline - perf_counter(),
        workers=workers,
        lns_only=True,
        on_makespan=report,
    )


def _kept(shop: Shop, goal: Goal, incumbent: Schedule, out: Outcome) -> Schedule:
    better = out.value is not None and out.value <= stage_value(shop, goal, incumbent)
    return out.schedule if out.schedule is not None and better else incumbent


def _loose_horizon(shop: Shop, schedule: Schedule) -> int:
    """Late enough for any plan a lower tardiness might need: everything one after another
    after the last blocked time."""
    blocked = max((b[-1][1] for b in shop.busy if b), default=0)
    latest_start = max((op.lb for op in shop.ops), default=0)
    longest = sum(max(d for _, d in op.options) for op in shop.ops)
    return max(makespan(shop, schedule), blocked, latest_start) + longest
