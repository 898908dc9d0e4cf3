"""Greedy dispatch and the CP-SAT solver on generated problems, every plan checked by the
independent validator."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from support.scheduling_problems import NOW, problems
from support.scheduling_validator import violations

from services.scheduling.domain import greedy, solver
from services.scheduling.domain.bounds import trivial_lower_bound
from services.scheduling.domain.changes import changed
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.model import (
    Assignment,
    Interval,
    Machine,
    OperationSpec,
    Plan,
    Priority,
    Problem,
    SolveStatus,
    WorkOrder,
)
from services.scheduling.domain.plain import solve_plain
from services.scheduling.domain.shop import build_shop
from services.scheduling.domain.solver import solve

QUICK = settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])


def rank(plan: Plan) -> tuple[int, int, int]:
    o = plan.objective
    return (o.weighted_tardiness, o.makespan, o.moved)


@settings(deadline=None, max_examples=150)
@given(problems(max_orders=8))
def test_greedy_plans_are_valid(problem: Problem) -> None:
    plan = dispatch(problem)
    assert violations(problem, plan) == []
    if plan.unplanned:
        assert plan.status is SolveStatus.INFEASIBLE
    elif all(k in problem.done or k in problem.frozen for k in _keys(problem)):
        assert plan.status is SolveStatus.EMPTY
    else:
        assert plan.status is SolveStatus.GREEDY


@QUICK
@given(problems())
def test_solved_plans_are_valid_and_never_worse_than_greedy(problem: Problem) -> None:
    dispatched = dispatch(problem)
    plan = solve(problem, time_limit_s=0.3, workers=2)
    assert violations(problem, plan) == []
    assert rank(plan) <= rank(dispatched)
    assert plan.objective.weighted_tardiness <= dispatched.objective.weighted_tardiness
    if plan.lower_bound is not None and plan.assignments and not plan.unplanned:
        assert plan.lower_bound <= plan.objective.makespan


@QUICK
@given(problems(max_orders=4, max_ops=3))
def test_solving_again_with_the_plan_as_previous_moves_nothing(problem: Problem) -> None:
    first = solve(problem, time_limit_s=0.3, workers=2)
    again = replace(problem, previous={a.key: a for a in first.assignments})
    second = solve(again, time_limit_s=0.3, workers=2)
    assert violations(again, second) == []
    kept = (first.objective.weighted_tardiness, first.objective.makespan, 0)
    assert rank(second) <= kept
    if rank(second)[:2] == kept[:2]:
        assert second.objective.moved == 0
        assert changed(again.previous, second) == []


@QUICK
@given(problems(max_orders=6))
def test_large_shop_search_keeps_plans_valid(problem: Problem) -> None:
    """Shops above the whole-model size get the solver's own LNS (small sub-models, left
    shifts): force it on small ones."""
    with patch.object(solver, "WHOLE_MODEL_UP_TO", 0):
        plan = solve(problem, time_limit_s=0.3, workers=1)
    assert violations(problem, plan) == []
    assert rank(plan) <= rank(dispatch(problem))


@QUICK
@given(problems(max_orders=4, max_ops=3))
def test_plain_model_plans_are_valid(problem: Problem) -> None:
    plan = solve_plain(problem, time_limit_s=0.3, workers=2)
    if plan.assignments or not plan.unplanned:
        assert violations(problem, plan) == []


def _keys(problem: Problem) -> list[tuple[str, int]]:
    return [(wo.work_order_id, op.seq) for wo in problem.work_orders for op in wo.operations]


def _shop() -> Problem:
    machines = (Machine("A"), Machine("B"))
    orders = tuple(
        WorkOrder(f"W{j}", tuple(OperationSpec(s, {"A": 3 + j, "B": 5}) for s in (1, 2)))
        for j in range(4)
    )
    return Problem(now=NOW, machines=machines, work_orders=orders)


def test_small_flexible_shop_is_solved_to_optimality() -> None:
    problem = _shop()
    plan = solve(problem, time_limit_s=5, workers=2)
    assert violations(problem, plan) == []
    assert plan.status is SolveStatus.OPTIMAL
    # 8 operations, 34 s of work on A at best: the optimum balances both machines
    assert plan.lower_bound == plan.objective.makespan


def test_rush_order_is_preferred_over_a_low_one() -> None:
    machines = (Machine("A"),)
    orders = (
        WorkOrder("low", (OperationSpec(1, {"A": 10}),), due=NOW + 10, priority=Priority.LOW),
        WorkOrder("rush", (OperationSpec(1, {"A": 10}),), due=NOW + 10, priority=Priority.RUSH),
    )
    plan = solve(Problem(now=NOW, machines=machines, work_orders=orders), time_limit_s=2, workers=1)
    first = min(plan.assignments, key=lambda a: a.start)
    assert first.work_order_id == "rush"
    assert plan.objective.weighted_tardiness == 10  # low, 10 s late, weight 1


def test_operation_without_machine_is_reported_and_the_rest_planned() -> None:
    machines = (Machine("A"),)
    orders = (
        WorkOrder("ok", (OperationSpec(1, {"A": 4}),)),
        WorkOrder("bad", (OperationSpec(1, {"Z": 4}), OperationSpec(2, {"A": 1}))),
    )
    problem = Problem(now=NOW, machines=machines, work_orders=orders)
    for plan in (dispatch(problem), solve(problem, time_limit_s=0.5, workers=1)):
        assert plan.status is SolveStatus.INFEASIBLE
        assert set(plan.unplanned) == {("bad", 1), ("bad", 2)}
        assert [a.key for a in plan.assignments] == [("ok", 1)]
        assert violations(problem, plan) == []


def test_nothing_to_plan_is_empty() -> None:
    plan = solve(
        Problem(now=NOW, machines=(Machine("A"),), work_orders=()), time_limit_s=1, workers=1
    )
    assert plan.status is SolveStatus.EMPTY
    assert plan.assignments == ()


def test_changed_lists_new_and_moved_assignments_only() -> None:
    same = Assignment("W", 1, "A", NOW, NOW + 5)
    moved = Assignment("W", 2, "B", NOW + 5, NOW + 9)
    new = Assignment("V", 1, "A", NOW + 5, NOW + 6)
    previous = {same.key: same, moved.key: replace(moved, machine_id="A")}
    plan = dispatch(_shop())
    plan = replace(plan, assignments=(same, moved, new))
    assert changed(previous, plan) == [moved, new]


def test_lower_bound_counts_a_machine_group_and_its_blocked_time() -> None:
    # four 10 s jobs confined to A or B, A down for the first 10 s: 50 s of A+B time, 25 s each
    machines = (Machine("A", unavailable=(Interval(NOW, NOW + 10),)), Machine("B"), Machine("C"))
    orders = tuple(WorkOrder(f"W{j}", (OperationSpec(1, {"A": 10, "B": 10}),)) for j in range(4))
    problem = Problem(now=NOW, machines=machines, work_orders=orders)
    assert trivial_lower_bound(build_shop(problem)) == 25
    plan = solve(problem, time_limit_s=2, workers=1)
    assert plan.objective.makespan == 30  # B takes two, A the other two after its downtime
    assert plan.lower_bound is not None
    assert 25 <= plan.lower_bound <= 30


def test_greedy_time_budget_runs_the_first_rule_only_once_spent() -> None:
    shop = build_shop(_shop())
    with patch.object(greedy, "run_rule", wraps=greedy.run_rule) as run:
        schedule = greedy.best_greedy(shop, budget_s=0.0)
    assert run.call_count == 1
    assert len(schedule) == len(shop.ops)
    with patch.object(greedy, "run_rule", wraps=greedy.run_rule) as run:
        greedy.best_greedy(shop)
    assert run.call_count == len(greedy.rules(shop)) > 1
