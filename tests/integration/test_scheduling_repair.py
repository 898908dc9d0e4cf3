"""A machine going down while the planner is in the middle of a solve, on real Kafka and
PostgreSQL: the repaired plan is published without waiting for that solve, the solve's result
(made from the state before the failure) is not committed over it, and the plan after answers
every trigger and still keeps work off the broken machine."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from support.scheduling import (
    assert_feasible,
    fetch,
    fresh_database,
    latest,
    load_sample_plant,
    make_settings,
    placed,
    plan_after,
    plan_with,
    prepare,
    publish,
    running,
    wait_for,
)

from contracts.telemetry import MachineState, MachineStateName
from services.scheduling.domain.model import Plan, Problem
from services.scheduling.domain.solver import solve

PLACED = "orders.order-placed.v1"
STATES = "telemetry.machine-states.v1"


class Gate:
    """The real solver, held at its start while ``closed`` (until opened)."""

    def __init__(self) -> None:
        self.closed = False
        self.entered = threading.Event()
        self.opened = threading.Event()

    def __call__(self, problem: Problem, **kwargs: Any) -> Plan:
        if self.closed:
            self.entered.set()
            self.opened.wait(60)
        return solve(problem, **kwargs)


async def test_a_down_machine_is_repaired_while_the_planner_solves(
    database_url: str, kafka_bootstrap: str
) -> None:
    repair_s = 4 * 3600
    settings = make_settings(
        await fresh_database(database_url), kafka_bootstrap, scheduling_repair_s=repair_s
    )
    await prepare(settings)
    gate = Gate()
    try:
        async with running(settings, solver=gate) as client:
            plant = await load_sample_plant(settings)
            run = uuid.uuid4().hex[:8]
            first = [placed(f"r-{run}-{n}", [("frame-road", 1)]) for n in range(3)]
            await publish(settings, [(PLACED, o.order_id, o) for o in first])
            lines = {f"{o.order_id}/1": (o.lines[0].sku, o.lines[0].quantity) for o in first}
            plan = await plan_with(client, set(lines))
            assert any(a["machine_id"] == "weld-01" for a in plan["assignments"])

            # a new order: the planner starts its solve and is held there
            gate.closed = True
            late = placed(f"r-{run}-late", [("frame-road", 1)])
            await publish(settings, [(PLACED, late.order_id, late)])
            await wait_for(lambda: _async(gate.entered.is_set()), 30, "the solve to start")

            since = plan["assignments"][0]["start_ms"]
            down = MachineState(machine_id="weld-01", state=MachineStateName.DOWN, since=since)
            await publish(settings, [(STATES, "weld-01", down)])
            repaired = await plan_after(client, plan["version"], what="the repaired plan")
            assert not gate.opened.is_set()  # published while the solve was still held
            assert repaired["triggers"] == ["machine-down"]
            assert repaired["status"] == "greedy"
            assert_feasible(repaired, plant, lines)
            until = since + repair_s * 1000
            on_weld = [a for a in repaired["assignments"] if a["machine_id"] == "weld-01"]
            assert all(a["start_ms"] >= until or a["end_ms"] <= since for a in on_weld)
            assert await fetch(settings, "SELECT 1 FROM scheduling.triggers")  # still pending

            # the held solve (without the repair) is dropped; the next one answers everything
            gate.closed = False
            gate.opened.set()
            everything = {**lines, f"{late.order_id}/1": ("frame-road", 1)}

            async def answered() -> dict[str, Any] | None:
                if await fetch(settings, "SELECT 1 FROM scheduling.triggers"):
                    return None
                return await latest(client)

            final = await wait_for(answered, 60, "every trigger answered")
            # the solver's plan follows unless it is the repaired plan exactly
            if final["version"] > repaired["version"]:
                assert set(final["triggers"]) == {"machine-down", "order-placed"}
            final = await plan_with(client, set(everything))
            assert_feasible(final, plant, everything)
            on_weld = [a for a in final["assignments"] if a["machine_id"] == "weld-01"]
            assert all(a["start_ms"] >= until or a["end_ms"] <= since for a in on_weld)
    finally:
        gate.opened.set()


async def _async(value: bool) -> bool:
    return value
