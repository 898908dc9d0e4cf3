"""An independent check of a plan against its problem, written from the problem statement only
(it imports the plain value types, none of the solver's code): every operation not done is
planned once (or reported unplanned), on an eligible machine for its duration there, not before
``now``, its release or the end of the operations before it in routing order, never sharing time
with another operation or the machine's unavailable time; frozen operations are untouched; and the
plan's objective is what its assignments give."""

from __future__ import annotations

from collections.abc import Mapping

from services.scheduling.domain.model import (
    TARDINESS_WEIGHT,
    Assignment,
    Machine,
    OperationSpec,
    OpKey,
    Plan,
    Problem,
    WorkOrder,
)


def violations(problem: Problem, plan: Plan) -> list[str]:
    found: list[str] = []
    machines = {m.machine_id: m for m in problem.machines}
    orders = {wo.work_order_id: wo for wo in problem.work_orders}
    specs = {(wo.work_order_id, op.seq): op for wo in problem.work_orders for op in wo.operations}
    planned: dict[OpKey, Assignment] = {}
    for a in plan.assignments:
        if a.key in planned:
            found.append(f"{a.key} planned twice")
        planned[a.key] = a
        if a.key not in specs:
            found.append(f"{a.key} is no operation of the problem")
        if a.key in problem.done:
            found.append(f"{a.key} is done but planned")
    found += [
        f"{key} must be either planned once or reported unplanned"
        for key in specs
        if key not in problem.done and (key in planned) == (key in plan.unplanned)
    ]
    for a in plan.assignments:
        frozen = problem.frozen.get(a.key)
        if frozen is not None:
            if frozen != a:
                found.append(f"frozen {a.key} changed: {frozen} -> {a}")
        elif a.key in specs:
            found += _operation(problem, a, specs[a.key], machines)
            found += _routing(problem, a, orders[a.work_order_id], planned)
    found += _overlaps(problem, plan.assignments)
    found += _unplanned(problem, plan, specs, machines)
    found += _objective(problem, plan)
    return found


def _operation(
    problem: Problem, a: Assignment, spec: OperationSpec, machines: Mapping[str, Machine]
) -> list[str]:
    out: list[str] = []
    duration = spec.durations.get(a.machine_id)
    if duration is None or a.machine_id not in machines:
        out.append(f"{a.key} on {a.machine_id}, not one of its machines in the plant")
    elif a.end - a.start != duration:
        out.append(f"{a.key} lasts {a.end - a.start} s, not {duration}")
    if a.start < problem.now:
        out.append(f"{a.key} starts at {a.start}, before now ({problem.now})")
    machine = machines.get(a.machine_id)
    out += [
        f"{a.key} [{a.start}, {a.end}) overlaps unavailable {iv}"
        for iv in (machine.unavailable if machine is not None else ())
        if _overlap(a.start, a.end, iv.start, iv.end)
    ]
    return out


def _routing(
    problem: Problem, a: Assignment, wo: WorkOrder, planned: Mapping[OpKey, Assignment]
) -> list[str]:
    out: list[str] = []
    if a.start < wo.release:
        out.append(f"{a.key} starts at {a.start}, before its release {wo.release}")
    for op in wo.operations:
        if op.seq == a.seq:
            break
        before = planned.get((wo.work_order_id, op.seq)) or problem.frozen.get(
            (wo.work_order_id, op.seq)
        )
        if before is not None and before.end > a.start:
            out.append(f"{a.key} starts at {a.start}, before {before.key} ends ({before.end})")
    return out


def _overlaps(problem: Problem, assignments: tuple[Assignment, ...]) -> list[str]:
    out: list[str] = []
    by_machine: dict[str, list[Assignment]] = {}
    for a in assignments:
        by_machine.setdefault(a.machine_id, []).append(a)
    for machine, ops in by_machine.items():
        for k, a in enumerate(ops):
            for b in ops[k + 1 :]:
                both_frozen = a.key in problem.frozen and b.key in problem.frozen
                if not both_frozen and _overlap(a.start, a.end, b.start, b.end):
                    out.append(f"{a.key} and {b.key} overlap on {machine}")
    return out


def _overlap(start: int, end: int, other_start: int, other_end: int) -> bool:
    """Half-open intervals share time (an operation of zero duration takes none)."""
    return max(start, other_start) < min(end, other_end)


def _unplanned(
    problem: Problem,
    plan: Plan,
    specs: Mapping[OpKey, OperationSpec],
    machines: Mapping[str, Machine],
) -> list[str]:
    """An operation may stay unplanned only when it, or one before it, has no machine."""
    out: list[str] = []
    for key in plan.unplanned:
        wo = next(w for w in problem.work_orders if w.work_order_id == key[0])
        settled = problem.done | set(problem.frozen)
        upto = [
            op
            for op in wo.operations
            if op.seq <= key[1] and (wo.work_order_id, op.seq) not in settled
        ]
        if all(any(m in machines for m in op.durations) for op in upto):
            out.append(f"{key} reported unplanned though it and its predecessors have machines")
    return out


def _objective(problem: Problem, plan: Plan) -> list[str]:
    ends: dict[str, int] = {}
    for a in plan.assignments:
        ends[a.work_order_id] = max(ends.get(a.work_order_id, a.end), a.end)
    tardiness = sum(
        TARDINESS_WEIGHT[wo.priority] * max(0, ends[wo.work_order_id] - wo.due)
        for wo in problem.work_orders
        if wo.due is not None and wo.work_order_id in ends
    )
    makespan = max([problem.now, *(a.end for a in plan.assignments)]) - problem.now
    moved = 0
    for a in plan.assignments:
        before = problem.previous.get(a.key)
        moved += before is not None and (before.machine_id, before.start) != (a.machine_id, a.start)
    got = plan.objective
    if (got.weighted_tardiness, got.makespan, got.moved) != (tardiness, makespan, moved):
        return [f"objective {got} but the assignments give {(tardiness, makespan, moved)}"]
    return []
