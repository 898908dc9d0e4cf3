"""The textbook CP-SAT model alone, as a baseline: optional intervals per eligible machine,
no overlap, minimise the makespan; no greedy plan, no hints, no neighbourhood search."""

from __future__ import annotations

from time import perf_counter

from services.scheduling.domain.cpsat_model import Goal, Stage, build, solve_built
from services.scheduling.domain.model import Plan, Problem, SolveStatus
from services.scheduling.domain.objective import plan_of
from services.scheduling.domain.shop import build_shop


def solve_plain(problem: Problem, *, time_limit_s: float, workers: int) -> Plan:
    began = perf_counter()
    shop = build_shop(problem)
    if not shop.ops:
        return plan_of(shop, [], SolveStatus.EMPTY)
    blocked = max((b[-1][1] for b in shop.busy if b), default=0)
    horizon = max(blocked, shop.fixed_end, *(op.lb for op in shop.ops)) + sum(
        max(d for _, d in op.options) for op in shop.ops
    )
    built = build(shop, Goal(Stage.MAKESPAN, horizon, stable=False))
    out = solve_built(built, time_limit_s=time_limit_s, workers=workers)
    seconds = perf_counter() - began
    if out.schedule is None:
        # No plan within the limit: nothing is planned, every operation is reported unplanned.
        return Plan(
            assignments=(),
            objective=plan_of(shop, [], SolveStatus.INFEASIBLE).objective,
            status=SolveStatus.INFEASIBLE if out.optimal else SolveStatus.GREEDY,
            lower_bound=out.bound,
            solve_seconds=seconds,
            unplanned=tuple(op.key for op in shop.ops),
        )
    status = SolveStatus.OPTIMAL if out.optimal else SolveStatus.FEASIBLE
    return plan_of(shop, out.schedule, status, lower_bound=out.bound, seconds=seconds)
