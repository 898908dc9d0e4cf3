"""The demo's plant view: per machine its state, the operation it runs and the next one
planned; moves of a re-plan counted; the scheduler's figures read from its /metrics."""

from __future__ import annotations

from typing import Any

from millrace.demo.board_view import machine_table, plan_line
from millrace.demo.scheduling import DemoClock, SchedulingDemo, read_metrics
from millrace.demo.state import DemoState
from millrace.demo.view import CLEAR, render_screen, summary_line

T0 = 1_732_262_400_000  # 08:00:00 UTC


def scheduled(wo: str, seq: int, machine: str, start: int) -> dict[str, Any]:
    order_id, _, line = wo.partition("/")
    return {
        "work_order_id": wo, "order_id": order_id, "line_no": int(line), "sku": "stem-cnc",
        "operation_seq": seq, "machine_id": machine, "planned_start": start,
        "planned_end": start + 60_000, "plan_id": "plant", "future_field": 1,
    }  # fmt: skip


def production(wo: str, seq: int, machine: str) -> dict[str, Any]:
    return {"work_order_id": wo, "operation_seq": seq, "machine_id": machine}


def plant_state() -> DemoState:
    state = DemoState(started=0.0)
    board = state.board
    board.record_scheduled(scheduled("3f9a2c1b-0000/1", 10, "saw-01", T0))
    board.record_scheduled(scheduled("3f9a2c1b-0000/1", 20, "cnc-01", T0 + 60_000))
    board.record_scheduled(scheduled("77aa0000-0000/2", 10, "saw-01", T0 + 120_000))
    board.record_started(production("3f9a2c1b-0000/1", 10, "saw-01"))
    state.record_machine_state({"machine_id": "saw-01", "state": "RUNNING"})
    state.record_machine_state({"machine_id": "cnc-01", "state": "DOWN"})
    state.record_oee({"machine_id": "saw-01", "oee": 0.6234, "availability": 0.9})
    state.record_oee({"machine_id": "cnc-01", "oee": None})
    return state


def test_a_machine_shows_what_it_runs_and_what_is_next() -> None:
    state = plant_state()
    rows = machine_table(state, ["saw-01", "cnc-01", "asm-01"])
    assert rows[0].split() == [
        "machine", "state", "OEE", "running", "now", "next", "planned", "(start)"
    ]  # fmt: skip
    saw, cnc, asm = rows[2:]
    assert saw.split()[:4] == ["saw-01", "RUNNING", "62%", "3f9a2c1b/1"]
    assert "77aa0000/2 #10 stem-cnc (08:02:00)" in saw
    assert cnc.split()[:4] == ["cnc-01", "DOWN", "-", "-"]  # its OEE was not measurable
    assert "3f9a2c1b/1 #20 stem-cnc (08:01:00)" in cnc
    assert asm.split() == ["asm-01", "?", "-", "-", "-"]


def test_a_replan_that_moves_a_waiting_operation_is_counted_a_started_one_is_not() -> None:
    state = plant_state()
    board = state.board
    board.record_scheduled(scheduled("3f9a2c1b-0000/1", 20, "cnc-02", T0 + 90_000))
    board.record_scheduled(scheduled("3f9a2c1b-0000/1", 10, "saw-02", T0))  # already started
    assert board.moved == 1
    assert board.last_move == "3f9a2c1b/1 #20 stem-cnc: cnc-01 -> cnc-02"
    assert board.next_up("cnc-01") is None
    assert "moved to another machine 1 (latest 3f9a2c1b/1 #20 stem-cnc: cnc-01 -> cnc-02)" in (
        plan_line(state)
    )


def test_completion_frees_the_machine_and_counts_done() -> None:
    state = plant_state()
    state.board.record_completed(production("3f9a2c1b-0000/1", 10, "saw-01"))
    assert state.board.current("saw-01") is None
    assert plan_line(state).startswith("plan: 3 operations   running 0   done 1   waiting 2")


def test_the_screen_shows_the_machines_and_the_line_shows_the_plan() -> None:
    state = plant_state()
    screen = render_screen(state, 5.0, ["head"], ["foot"], rows=40, machines=["saw-01", "cnc-01"])
    lines = screen.removeprefix(CLEAR).splitlines()
    assert any(line.startswith("plan: 3 operations") for line in lines)
    assert any(line.startswith("cnc-01") and "DOWN" in line for line in lines)
    assert summary_line(state, 5.0).endswith("ops=3/1/0 moved=0 down=cnc-01")


def test_scheduler_figures_come_from_its_metrics() -> None:
    exposition = "\n".join(
        [
            "# TYPE millrace_scheduling_plans_total counter",
            'millrace_scheduling_plans_total{trigger="order",status="optimal"} 4.0',
            'millrace_scheduling_plans_total{trigger="machine",status="feasible"} 2.0',
            'millrace_scheduling_plans_created{trigger="order",status="optimal"} 1.7e9',
            "# TYPE millrace_scheduling_late_operations gauge",
            "millrace_scheduling_late_operations 3.0",
            "# TYPE millrace_scheduling_plan_infeasible gauge",
            "millrace_scheduling_plan_infeasible 1.0",
        ]
    )
    assert read_metrics(exposition + "\n") == {"plans": 6.0, "late": 3.0, "infeasible": 1.0}


def test_the_scheduler_child_runs_on_the_demo_clock_with_the_demo_tokens(tmp_path: Any) -> None:
    demo = SchedulingDemo({"PATH": "/bin"}, tmp_path, 8082, DemoClock(0.01, 45.0))
    env = demo.child.env
    assert demo.child.argv[-2:] == ["run", "scheduling"]
    assert env["MILLRACE_HTTP_PORT"] == "8082"
    assert env["MILLRACE_SCHEDULING_DURATION_SCALE"] == "0.01"
    assert env["MILLRACE_SCHEDULING_REPAIR_S"] == "45"
    assert env["MILLRACE_SCHEDULING_OEE_PERIOD_S"] == "60"
    assert "sha256" in env["MILLRACE_SCHEDULING_TOKENS"]
    demo.figures = {"plans": 6.0, "late": 3.0}
    first, gantt = demo.lines()
    assert first == "scheduling http://127.0.0.1:8082: plans 6   late operations 3"
    assert "http://127.0.0.1:8082/v1/schedule/gantt.svg" in gantt
    assert "Bearer demo-plant-token" in gantt
    assert str(tmp_path / "gantt.svg") in gantt
