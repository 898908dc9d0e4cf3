"""From what the service knows (a :class:`~.state.Snapshot`) to the solver's
:class:`~.model.Problem`.

Each open order line is one work order, its operations the product's routing; an operation
may run on every machine offering its capability, for ``setup_s + quantity * run_s_per_unit``
seconds (times the demo's ``duration_scale``). Started operations are frozen where they run;
completed ones are done, with their actual times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.scheduling.domain.calendar import ShiftRule, merge, off_shift, outage
from services.scheduling.domain.model import (
    Assignment,
    Interval,
    Machine,
    OperationSpec,
    OpKey,
    Problem,
    WorkOrder,
)
from services.scheduling.domain.state import MachineInfo, OrderLine, RoutingStep, Snapshot


@dataclass(frozen=True, slots=True)
class Rules:
    """The plant's planning rules, from the service's settings."""

    repair_s: int = 3_600
    duration_scale: float = 1.0
    maintenance: Mapping[str, tuple[Interval, ...]] = field(default_factory=dict)
    shifts: Mapping[str, tuple[ShiftRule, ...]] = field(default_factory=dict)  # by work centre
    calendar_days: int = 14


def duration(step: RoutingStep, quantity: int, scale: float) -> int:
    """Seconds the step takes for ``quantity`` units; at least one."""
    return max(1, round((step.setup_s + quantity * step.run_s_per_unit) * scale))


def machines(snapshot: Snapshot, rules: Rules) -> tuple[Machine, ...]:
    out = []
    for machine_id in sorted(snapshot.machines):
        info = snapshot.machines[machine_id]
        down = outage(snapshot.conditions.get(machine_id), snapshot.now, rules.repair_s)
        unavailable = merge(
            [
                *([down] if down else []),
                *rules.maintenance.get(machine_id, ()),
                *off_shift(
                    rules.shifts.get(info.work_center, ()), snapshot.now, rules.calendar_days
                ),
            ]
        )
        out.append(Machine(machine_id, info.work_center, unavailable))
    return tuple(out)


def work_order(
    line: OrderLine,
    routing: tuple[RoutingStep, ...],
    fleet: Mapping[str, MachineInfo],
    scale: float,
) -> WorkOrder:
    ops = tuple(
        OperationSpec(
            seq=step.seq,
            durations={
                m.machine_id: duration(step, line.quantity, scale)
                for m in fleet.values()
                if step.capability in m.capabilities
            },
            name=step.name,
        )
        for step in routing
    )
    return WorkOrder(
        work_order_id=line.work_order_id,
        operations=ops,
        due=line.due,
        priority=line.priority,
        order_id=line.order_id,
        line_no=line.line_no,
        sku=line.sku,
    )


def build(snapshot: Snapshot, rules: Rules) -> Problem:
    """The problem to solve at ``snapshot.now``. Lines whose product is unknown yet (master
    data not received) and lines whose every operation is done are left out."""
    frozen: dict[OpKey, Assignment] = {}
    done: set[OpKey] = set()
    orders = []
    for line in snapshot.lines:
        routing = snapshot.routings.get(line.sku)
        if not routing:
            continue
        wo = work_order(line, routing, snapshot.machines, rules.duration_scale)
        for step in routing:
            key = (wo.work_order_id, step.seq)
            progress = snapshot.progress.get(key)
            if progress is None:
                continue
            length = duration(step, line.quantity, rules.duration_scale)
            if progress.completed is not None:
                begin = (
                    progress.completed - length if progress.started is None else progress.started
                )
                begin = min(begin, progress.completed)
                frozen[key] = Assignment(
                    key[0], key[1], progress.machine_id, begin, progress.completed
                )
                done.add(key)
            elif progress.started is not None:
                # Running: expected to end after its duration, and not before now.
                end = max(progress.started + length, snapshot.now + 1)
                frozen[key] = Assignment(key[0], key[1], progress.machine_id, progress.started, end)
        if all((wo.work_order_id, op.seq) in done for op in wo.operations):
            for op in wo.operations:
                frozen.pop((wo.work_order_id, op.seq), None)
                done.discard((wo.work_order_id, op.seq))
            continue
        orders.append(wo)
    return Problem(
        now=snapshot.now,
        machines=machines(snapshot, rules),
        work_orders=tuple(orders),
        frozen=frozen,
        done=frozenset(done),
        previous=snapshot.previous,
    )
