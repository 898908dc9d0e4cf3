"""The CP-SAT model of the flexible job shop.

Each operation has a start and an end; on each eligible machine an optional interval of that
machine's duration, exactly one present. Machines take no overlap (their blocked time included),
operations follow routing order.

The lexicographic objective runs in stages: ``TARDINESS`` minimises the weighted tardiness;
``MAKESPAN`` caps it at the best found and minimises ``makespan * K + moved`` (K larger than any
count of moves, so a move never buys a longer plan).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from ortools.sat.python import cp_model

from services.scheduling.domain.objective import Schedule
from services.scheduling.domain.shop import Shop


class Stage(Enum):
    TARDINESS = "tardiness"
    MAKESPAN = "makespan"


@dataclass(frozen=True, slots=True)
class Goal:
    stage: Stage
    horizon: int  # no operation ends later (relative seconds)
    tardiness_cap: int | None = None  # MAKESPAN stage: weighted tardiness at most this
    stable: bool = True  # count moves against the problem's previous plan


@dataclass(slots=True)
class Built:
    model: cp_model.CpModel
    starts: list[cp_model.IntVar]
    ends: list[cp_model.IntVar]
    cmax: cp_model.IntVar
    choices: list[list[tuple[int, cp_model.IntVar | None]]]  # (machine, presence); None: sure


@dataclass(frozen=True, slots=True)
class Outcome:
    schedule: Schedule | None
    optimal: bool
    value: int | None  # the stage objective of ``schedule``
    bound: int  # the solver's best bound on the stage objective


def moves_weight(shop: Shop) -> int:
    return len(shop.problem.previous) + 1


def stage_value(shop: Shop, goal: Goal, schedule: Schedule) -> int:
    """The stage objective of ``schedule`` as the model computes it."""
    if goal.stage is Stage.TARDINESS:
        return tardiness(shop, schedule)
    moved = 0
    if goal.stable:
        index = {m: k for k, m in enumerate(shop.machine_ids)}
        for i, (m, s) in enumerate(schedule):
            before = shop.problem.previous.get(shop.ops[i].key)
            if before is not None:
                moved += (index.get(before.machine_id), before.start - shop.origin) != (m, s)
    latest = max(
        [
            shop.fixed_end,
            0,
            *(s + dict(shop.ops[i].options)[m] for i, (m, s) in enumerate(schedule)),
        ]
    )
    return latest * moves_weight(shop) + moved


def tardiness(shop: Shop, schedule: Schedule) -> int:
    """The weighted tardiness the model sees: of work orders with operations to plan."""
    total = 0
    for job, own in enumerate(shop.jobs):
        due = shop.due[job]
        if own and due is not None:
            machine, start = schedule[own[-1]]
            end = start + dict(shop.ops[own[-1]].options)[machine]
            total += shop.weight[job] * max(0, end - due)
    return total


def build(
    shop: Shop,
    goal: Goal,
    *,
    hint: Schedule | None = None,
) -> Built:
    """The model of ``shop``, hinted with ``hint`` (the incumbent) when given."""
    model = cp_model.CpModel()
    horizon = goal.horizon
    starts: list[cp_model.IntVar] = []
    ends: list[cp_model.IntVar] = []
    choices: list[list[tuple[int, cp_model.IntVar | None]]] = []
    per_machine: list[list[cp_model.IntervalVar]] = [[] for _ in shop.machine_ids]
    for i, op in enumerate(shop.ops):
        start = model.new_int_var(op.lb, max(op.lb, horizon), f"s{i}")
        end = model.new_int_var(op.lb, max(op.lb, horizon), f"e{i}")
        options = op.options
        mine: list[tuple[int, cp_model.IntVar | None]] = []
        if len(options) == 1:
            m, d = options[0]
            per_machine[m].append(model.new_interval_var(start, d, end, f"i{i}"))
            mine.append((m, None))
        else:
            for m, d in options:
                lit = model.new_bool_var(f"x{i}_{m}")
                per_machine[m].append(model.new_optional_interval_var(start, d, end, lit, ""))
                mine.append((m, lit))
            model.add_exactly_one(lit for _, lit in mine if lit is not None)
        if op.pred is not None:
            model.add(start >= ends[op.pred])
        starts.append(start)
        ends.append(end)
        choices.append(mine)
    for m, blocked in enumerate(shop.busy):
        for s, e in blocked:
            if s < horizon:
                per_machine[m].append(model.new_fixed_size_interval_var(s, e - s, ""))
        model.add_no_overlap(per_machine[m])
    cmax = model.new_int_var(max(shop.fixed_end, 0), max(horizon, shop.fixed_end, 0), "cmax")
    lasts = [ends[own[-1]] for own in shop.jobs if own]
    if lasts:
        model.add_max_equality(cmax, [*lasts, model.new_constant(max(shop.fixed_end, 0))])
    late = _tardiness(model, shop, ends, horizon)
    if goal.stage is Stage.TARDINESS:
        objective = late
    else:
        if goal.tardiness_cap is not None:
            model.add(late <= goal.tardiness_cap)
        moved = _moved(model, shop, starts, choices) if goal.stable else cp_model.LinearExpr.sum([])
        objective = cmax * moves_weight(shop) + moved
    model.minimize(objective)
    built = Built(model, starts, ends, cmax, choices)
    if hint is not None:
        set_hint(built, shop, hint)
    return built


def _tardiness(
    model: cp_model.CpModel, shop: Shop, ends: Sequence[cp_model.IntVar], horizon: int
) -> cp_model.LinearExpr:
    terms: list[cp_model.LinearExprT] = []
    for job, own in enumerate(shop.jobs):
        due = shop.due[job]
        if own and due is not None and due < horizon:
            late = model.new_int_var(0, horizon - due, f"t{job}")
            model.add(late >= ends[own[-1]] - due)
            terms.append(shop.weight[job] * late)
    return cp_model.LinearExpr.sum(terms)


def _moved(
    model: cp_model.CpModel,
    shop: Shop,
    starts: Sequence[cp_model.IntVar],
    choices: Sequence[Sequence[tuple[int, cp_model.IntVar | None]]],
) -> cp_model.LinearExpr:
    """Operations not on their previous machine at their previous start (a constant 1 where
    that is impossible)."""
    previous = shop.problem.previous
    index = {m: k for k, m in enumerate(shop.machine_ids)}
    moved: list[cp_model.LinearExprT] = []
    for i, op in enumerate(shop.ops):
        before = previous.get(op.key)
        if before is None:
            continue
        at = before.start - shop.origin
        machine = index.get(before.machine_id)
        lit = next((lit for m, lit in choices[i] if m == machine), False)
        if lit is False or at < op.lb:
            moved.append(1)
            continue
        kept = model.new_bool_var(f"k{i}")
        if lit is not None:
            model.add_implication(kept, lit)
        model.add(starts[i] == at).only_enforce_if(kept)
        moved.append(1 - kept)
    return cp_model.LinearExpr.sum(moved)


def set_hint(built: Built, shop: Shop, hint: Schedule) -> None:
    """Every decision and time of the incumbent, so CP-SAT starts from a complete solution (an
    incomplete hint was often not taken up at all)."""
    model = built.model
    model.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools' stubs
    latest = max(shop.fixed_end, 0)
    for i, (machine, start) in enumerate(hint):
        end = start + dict(shop.ops[i].options)[machine]
        model.add_hint(built.starts[i], start)
        model.add_hint(built.ends[i], end)
        for m, lit in built.choices[i]:
            if lit is not None:
                model.add_hint(lit, m == machine)
        latest = max(latest, end)
    model.add_hint(built.cmax, latest)


class _Progress(cp_model.CpSolverSolutionCallback):
    def __init__(self, cmax: cp_model.IntVar, report: Callable[[int], None]) -> None:
        super().__init__()
        self._cmax, self._report = cmax, report

    def on_solution_callback(self) -> None:
        self._report(self.value(self._cmax))


def solve_built(
    built: Built,
    *,
    time_limit_s: float,
    workers: int,
    seed: int = 0,
    lns_only: bool = False,
    on_makespan: Callable[[int], None] | None = None,
) -> Outcome:
    """Solve; ``lns_only`` makes every worker improve the hint by CP-SAT's own neighbourhood
    search (no tree search, so nothing is proven); ``on_makespan`` hears the makespan of every
    solution as CP-SAT finds it."""
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.01)
    solver.parameters.num_workers = max(workers, 1)
    solver.parameters.random_seed = seed
    solver.parameters.use_lns_only = lns_only
    callback = _Progress(built.cmax, on_makespan) if on_makespan is not None else None
    status = solver.solve(built.model, callback)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Outcome(None, False, None, int(solver.best_objective_bound))
    schedule = [
        (next(m for m, lit in mine if lit is None or solver.boolean_value(lit)), solver.value(s))
        for s, mine in zip(built.starts, built.choices, strict=True)
    ]
    return Outcome(
        schedule,
        status == cp_model.OPTIMAL,
        int(solver.objective_value),
        int(solver.best_objective_bound),
    )
