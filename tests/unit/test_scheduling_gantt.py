"""The Gantt SVG read back with xml.etree: one bar per assignment with its attributes, blocked
time, the now line and late operations marked."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from support.scheduling_problems import problems

from services.scheduling.domain.gantt import gantt_svg
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.model import (
    Interval,
    Machine,
    OperationSpec,
    Plan,
    Priority,
    Problem,
    WorkOrder,
)
from services.scheduling.domain.solver import solve

SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ET.Element]:
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if "op" in r.get("class", "").split()]


def check_against_plan(problem: Problem, plan: Plan, svg: str) -> None:
    root = ET.fromstring(svg)
    seen = {
        (b.get("data-work-order"), int(b.get("data-seq", "")), b.get("data-machine"),
         int(b.get("data-start", "")), int(b.get("data-end", "")))
        for b in bars(svg)
    }  # fmt: skip
    expected = {(a.work_order_id, a.seq, a.machine_id, a.start, a.end) for a in plan.assignments}
    assert seen == expected
    assert len(bars(svg)) == len(plan.assignments)
    due = {wo.work_order_id: wo.due for wo in problem.work_orders}
    for bar in bars(svg):
        deadline = due[bar.get("data-work-order", "")]
        late = deadline is not None and int(bar.get("data-end", "")) > deadline
        assert ("late" in bar.get("class", "").split()) == late
        assert float(bar.get("width", "0")) > 0
    lines = [e for e in root.iter(f"{SVG}line") if e.get("class") == "now"]
    assert [int(e.get("data-time", "")) for e in lines] == [problem.now]


@settings(deadline=None, max_examples=40)
@given(problems(max_orders=6))
def test_every_assignment_is_a_bar_with_its_attributes(problem: Problem) -> None:
    plan = dispatch(problem)
    check_against_plan(problem, plan, gantt_svg(problem, plan, title="generated"))


def test_planner_view_of_a_late_rush_order_and_a_breakdown() -> None:
    now = 1_790_000_000
    machines = (Machine("CNC-1", unavailable=(Interval(now, now + 3600),)), Machine("CNC-2"))
    orders = (
        WorkOrder(
            "WO-1", (OperationSpec(1, {"CNC-1": 1800, "CNC-2": 2400}),), due=now + 1200,
            priority=Priority.RUSH, order_id="SO-7",
        ),
        WorkOrder("WO-2", (OperationSpec(1, {"CNC-2": 600}),), due=now + 7200, order_id="SO-8"),
    )  # fmt: skip
    problem = Problem(now=now, machines=machines, work_orders=orders)
    plan = solve(problem, time_limit_s=1, workers=1)
    svg = gantt_svg(problem, plan, title="Plant <A> & B")
    check_against_plan(problem, plan, svg)
    root = ET.fromstring(svg)
    late = [b for b in bars(svg) if "late" in b.get("class", "")]
    assert [b.get("data-work-order") for b in late] == ["WO-1"]  # 2400 s on CNC-2, due in 1200
    blocked = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "unavailable"]
    assert [r.get("data-machine") for r in blocked] == ["CNC-1"]
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "Plant <A> & B" in texts  # escaped in the file, intact once parsed
    assert any(":" in t and t[:2].isdigit() for t in texts)  # wall-clock tick labels
    colours = {b.get("data-order"): b.get("fill") for b in bars(svg)}
    assert colours["SO-7"] != colours["SO-8"]


def test_a_plan_of_benchmark_times_labels_plain_numbers() -> None:
    problem = Problem(
        now=0,
        machines=(Machine("M1"),),
        work_orders=(WorkOrder("J1", (OperationSpec(1, {"M1": 40}),)),),
    )
    svg = gantt_svg(problem, dispatch(problem))
    ticks = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text") if t.get("class") == "tick"]
    assert ticks[:3] == ["0", "5", "10"]


def test_ticks_of_a_plan_of_minutes_read_differently() -> None:
    """A demo's plan spans minutes (durations scaled down): ticks under a minute apart carry
    seconds, so no two of them read the same."""
    now = 1_765_000_000
    problem = Problem(
        now=now,
        machines=(Machine("M1"),),
        work_orders=(WorkOrder("J1", (OperationSpec(1, {"M1": 240}),)),),
    )
    svg = gantt_svg(problem, dispatch(problem))
    ticks = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text") if t.get("class") == "tick"]
    assert len(ticks) >= 5
    assert len(set(ticks)) == len(ticks), ticks
