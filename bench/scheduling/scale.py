"""A plant-sized problem generated deterministically: 500 work orders of 10 operations (5,000)
on 50 machines in 10 work centres. Each operation runs in one work centre, on any of its 5
machines at that machine's speed (``setup + quantity * run``), routings visit the centres in a
random order, and some machines have planned maintenance."""

from __future__ import annotations

import random

from services.scheduling.domain.model import Interval, Machine, OperationSpec, Problem, WorkOrder

NOW = 1_790_000_000


def scale_problem(
    orders: int = 500,
    ops_per_order: int = 10,
    centres: int = 10,
    per_centre: int = 5,
    seed: int = 7,
) -> Problem:
    rng = random.Random(seed)
    machines: list[Machine] = []
    speed: dict[str, float] = {}
    for c in range(centres):
        for k in range(per_centre):
            name = f"WC{c}-M{k}"
            speed[name] = rng.uniform(0.8, 1.3)
            start = NOW + rng.randrange(0, 20) * 3600
            maintenance = (Interval(start, start + 4 * 3600),) if rng.random() < 0.3 else ()
            machines.append(Machine(name, work_center=f"WC{c}", unavailable=maintenance))
    work_orders = []
    for j in range(orders):
        quantity = rng.randint(5, 60)
        route = (
            rng.sample(range(centres), ops_per_order)
            if ops_per_order <= centres
            else [rng.randrange(centres) for _ in range(ops_per_order)]
        )
        ops = []
        for seq, centre in enumerate(route, start=1):
            setup, run = rng.randint(300, 1800), rng.randint(20, 120)
            names = [f"WC{centre}-M{k}" for k in range(per_centre)]
            eligible = rng.sample(names, rng.randint(2, per_centre))
            ops.append(
                OperationSpec(seq, {m: int((setup + quantity * run) * speed[m]) for m in eligible})
            )
        work_orders.append(WorkOrder(f"WO{j:04d}", tuple(ops), order_id=f"SO{j // 3:04d}"))
    return Problem(now=NOW, machines=tuple(machines), work_orders=tuple(work_orders))
