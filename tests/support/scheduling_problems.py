"""Hypothesis strategies for small scheduling problems with every feature the solver handles:
flexible machines (some not in the plant), unavailable time, releases, due dates and priorities,
done and frozen operations, and a previous plan."""

from __future__ import annotations

from hypothesis import strategies as st

from services.scheduling.domain.model import (
    Assignment,
    Interval,
    Machine,
    OperationSpec,
    OpKey,
    Priority,
    Problem,
    WorkOrder,
)

NOW = 1_790_000_000


@st.composite
def problems(draw: st.DrawFn, *, max_orders: int = 5, max_ops: int = 4) -> Problem:
    n_machines = draw(st.integers(1, 4))
    names = [f"M{k}" for k in range(n_machines)]
    machines = []
    for name in names:
        cuts = sorted(draw(st.sets(st.integers(-20, 150), max_size=4)))
        gaps = [Interval(NOW + a, NOW + b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
        machines.append(Machine(name, unavailable=tuple(gaps)))
    work_orders: list[WorkOrder] = []
    frozen: dict[OpKey, Assignment] = {}
    done: set[OpKey] = set()
    busy_until = dict.fromkeys(names, NOW - 100)
    for j in range(draw(st.integers(0, max_orders))):
        ops = []
        for seq in range(1, draw(st.integers(1, max_ops)) + 1):
            eligible = draw(st.sets(st.sampled_from([*names, "elsewhere"]), min_size=1))
            if draw(st.integers(0, 30)) > 0:  # rarely only a machine outside the plant
                eligible.add(draw(st.sampled_from(names)))
            ops.append(OperationSpec(seq, {m: draw(st.integers(0, 25)) for m in eligible}))
        wo_id = f"WO{j}"
        started = draw(st.integers(0, len(ops) - 1))
        for spec in ops[:started]:  # done, with actual times in the past
            done.add((wo_id, spec.seq))
            if draw(st.booleans()):
                frozen[(wo_id, spec.seq)] = Assignment(
                    wo_id, spec.seq, names[0], NOW - 90, NOW - 80
                )
        running = ops[started]
        on = [m for m in running.durations if m in busy_until]
        if on and draw(st.integers(0, 3)) == 0:  # the next one has started (frozen, not done)
            m = on[0]
            start = max(busy_until[m], NOW - 10)
            frozen[(wo_id, running.seq)] = Assignment(
                wo_id, running.seq, m, start, start + running.durations[m]
            )
            busy_until[m] = start + running.durations[m]
        due = draw(st.none() | st.integers(NOW, NOW + 120))
        work_orders.append(
            WorkOrder(
                wo_id,
                tuple(ops),
                due=due,
                priority=draw(st.sampled_from(list(Priority))),
                release=NOW + draw(st.integers(-50, 40)),
                order_id=f"O{j // 2}",
            )
        )
    return Problem(
        now=NOW,
        machines=tuple(machines),
        work_orders=tuple(work_orders),
        frozen=frozen,
        done=frozenset(done),
    )
