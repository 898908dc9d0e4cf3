"""The quick re-plan after a machine goes down, and the greedy rules' deadline: valid plans
(checked by the independent validator), the broken machine avoided, never worse than the
previous plan brought up to date."""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter

from hypothesis import HealthCheck, given, settings
from support.scheduling_problems import NOW, problems
from support.scheduling_validator import violations

from services.scheduling.domain import greedy
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.model import (
    Interval,
    Machine,
    OperationSpec,
    Problem,
    SolveStatus,
    WorkOrder,
)
from services.scheduling.domain.objective import assignments_of, evaluate, rank
from services.scheduling.domain.quick import after, quick_plan
from services.scheduling.domain.repair import previous_schedule
from services.scheduling.domain.shop import build_shop
from services.scheduling.domain.solver import solve


def _plant(down: tuple[Interval, ...] = ()) -> Problem:
    machines = (Machine("A", unavailable=down), Machine("B"))
    orders = tuple(
        WorkOrder(f"W{j}", tuple(OperationSpec(s, {"A": 10, "B": 12}) for s in (1, 2)))
        for j in range(6)
    )
    return Problem(now=NOW, machines=machines, work_orders=orders)


def test_quick_plan_moves_work_off_the_broken_machine_and_the_solver_follows() -> None:
    before = dispatch(_plant())
    assert any(a.machine_id == "A" for a in before.assignments)
    outage = Interval(NOW, NOW + 10_000)
    problem = replace(_plant((outage,)), previous={a.key: a for a in before.assignments})
    quick = quick_plan(problem)
    assert quick.status is SolveStatus.GREEDY
    assert violations(problem, quick) == []
    assert all(a.machine_id == "B" or a.start >= outage.end for a in quick.assignments)
    # the solver's version counts its moves against the quick one and is never worse
    second = after(problem, quick)
    assert second.previous == {a.key: a for a in quick.assignments}
    improved = solve(second, time_limit_s=1, workers=1)
    assert violations(second, improved) == []
    assert rank(improved.objective)[:2] <= rank(quick.objective)[:2]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_orders=8))
def test_quick_plans_are_valid_and_no_worse_than_the_repaired_previous(problem: Problem) -> None:
    previous = dispatch(problem)
    problem = replace(problem, previous={a.key: a for a in previous.assignments})
    quick = quick_plan(problem)
    assert violations(problem, quick) == []
    shop = build_shop(problem)
    if shop.ops and not shop.unplanned:
        repaired = evaluate(problem, assignments_of(shop, previous_schedule(shop)))
        assert rank(quick.objective) <= rank(repaired)


def test_a_rule_past_its_deadline_is_abandoned() -> None:
    big = Problem(
        now=NOW,
        machines=(Machine("A"), Machine("B")),
        work_orders=tuple(
            WorkOrder(f"W{j}", (OperationSpec(1, {"A": 5, "B": 7}),)) for j in range(200)
        ),
    )
    shop = build_shop(big)
    assert len(shop.ops) > greedy.CLOCK_EVERY  # the clock is read every CLOCK_EVERY pops
    (rule, *_) = greedy.rules(shop)
    assert greedy.run_rule(shop, rule, deadline=perf_counter() - 1) is None
    done = greedy.run_rule(shop, rule, deadline=perf_counter() + 60)
    assert done is not None
    assert len(done) == len(shop.ops)
