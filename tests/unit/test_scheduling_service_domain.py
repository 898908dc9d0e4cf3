"""The scheduling service's pure domain: problem building, availability, triggers and their
coalescing, and what a plan version announces."""

from __future__ import annotations

from datetime import UTC, datetime, time

from contracts.scheduling import SolveStatus as ContractStatus
from services.scheduling.domain.calendar import ShiftRule, merge, off_shift, outage
from services.scheduling.domain.model import (
    Assignment,
    Interval,
    Objective,
    Plan,
    Priority,
    SolveStatus,
)
from services.scheduling.domain.problem import Rules, build
from services.scheduling.domain.publish import news
from services.scheduling.domain.state import (
    Condition,
    MachineInfo,
    OrderLine,
    Progress,
    RoutingStep,
    Snapshot,
)
from services.scheduling.domain.triggers import (
    Pending,
    Trigger,
    availability_change,
    coalesce,
    drifted,
    newer,
)

NOW = 1_800_000_000
MACHINES = {
    "saw-01": MachineInfo("saw-01", "cutting", frozenset({"cutting"})),
    "laser-01": MachineInfo("laser-01", "finishing", frozenset({"engraving", "cutting"})),
    "cnc-01": MachineInfo("cnc-01", "machining", frozenset({"milling"})),
}
ROUTING = (
    RoutingStep(10, "saw", "cutting", setup_s=300, run_s_per_unit=60),
    RoutingStep(20, "mill", "milling", setup_s=1200, run_s_per_unit=540),
)


def line(order_id: str = "o1", line_no: int = 1, quantity: int = 2, sku: str = "stem") -> OrderLine:
    return OrderLine(order_id, "acme", line_no, sku, quantity, NOW + 86_400, Priority.HIGH)


def snap(**kw: object) -> Snapshot:
    values: dict[str, object] = {
        "now": NOW,
        "machines": MACHINES,
        "routings": {"stem": ROUTING},
        "lines": (line(),),
    }
    return Snapshot(**(values | kw))  # type: ignore[arg-type]


def test_an_order_line_is_a_work_order_with_the_routing_on_every_capable_machine() -> None:
    problem = build(snap(), Rules())
    (wo,) = problem.work_orders
    assert wo.work_order_id == "o1/1"
    assert (wo.order_id, wo.line_no, wo.sku, wo.due) == ("o1", 1, "stem", NOW + 86_400)
    assert wo.priority is Priority.HIGH
    saw, mill = wo.operations
    assert (saw.seq, dict(saw.durations)) == (10, {"saw-01": 420, "laser-01": 420})
    assert (mill.seq, dict(mill.durations)) == (20, {"cnc-01": 1200 + 2 * 540})
    assert [m.machine_id for m in problem.machines] == ["cnc-01", "laser-01", "saw-01"]


def test_duration_scale_shrinks_durations_but_never_below_one_second() -> None:
    (wo,) = build(snap(), Rules(duration_scale=0.01)).work_orders
    assert dict(wo.operations[0].durations) == {"saw-01": 4, "laser-01": 4}
    (wo,) = build(snap(), Rules(duration_scale=0.0001)).work_orders
    assert set(wo.operations[0].durations.values()) == {1}


def test_lines_of_unknown_products_wait_for_master_data() -> None:
    problem = build(snap(lines=(line(), line("o2", sku="unknown"))), Rules())
    assert [wo.work_order_id for wo in problem.work_orders] == ["o1/1"]


def test_started_operations_are_frozen_and_completed_ones_done() -> None:
    progress = {
        ("o1/1", 10): Progress("laser-01", started=NOW - 500, completed=NOW - 50),
        ("o1/1", 20): Progress("cnc-01", started=NOW - 100),
    }
    problem = build(snap(progress=progress), Rules())
    assert problem.done == frozenset({("o1/1", 10)})
    assert problem.frozen[("o1/1", 10)] == Assignment("o1/1", 10, "laser-01", NOW - 500, NOW - 50)
    # running: its expected end is its start plus its duration
    assert problem.frozen[("o1/1", 20)] == Assignment("o1/1", 20, "cnc-01", NOW - 100, NOW + 2180)


def test_an_overrunning_operation_is_expected_to_end_after_now() -> None:
    progress = {("o1/1", 10): Progress("saw-01", started=NOW - 10_000)}
    frozen = build(snap(progress=progress), Rules()).frozen[("o1/1", 10)]
    assert frozen.end == NOW + 1


def test_a_completion_without_its_start_is_dated_back_by_its_duration() -> None:
    progress = {("o1/1", 10): Progress("saw-01", completed=NOW - 20)}
    assert build(snap(progress=progress), Rules()).frozen[("o1/1", 10)].start == NOW - 440


def test_finished_work_orders_leave_the_problem() -> None:
    progress = {
        ("o1/1", 10): Progress("saw-01", started=NOW - 900, completed=NOW - 800),
        ("o1/1", 20): Progress("cnc-01", started=NOW - 700, completed=NOW - 10),
    }
    problem = build(snap(progress=progress), Rules())
    assert problem.work_orders == ()
    assert not problem.frozen
    assert not problem.done


def test_a_down_machine_is_unavailable_until_its_expected_repair() -> None:
    conditions = {"saw-01": Condition("DOWN", NOW - 600)}
    problem = build(snap(conditions=conditions), Rules(repair_s=3600))
    saw = next(m for m in problem.machines if m.machine_id == "saw-01")
    assert saw.unavailable == (Interval(NOW - 600, NOW + 3000),)
    assert all(not m.unavailable for m in problem.machines if m.machine_id != "saw-01")


def test_a_machine_down_past_its_expected_repair_stays_out_for_half_a_repair() -> None:
    assert outage(Condition("MAINTENANCE", NOW - 9000), NOW, 3600) == Interval(
        NOW - 9000, NOW + 1800
    )
    assert outage(Condition("RUNNING", NOW - 9000), NOW, 3600) is None
    assert outage(None, NOW, 3600) is None


def test_maintenance_windows_and_outages_merge() -> None:
    rules = Rules(maintenance={"saw-01": (Interval(NOW + 3000, NOW + 5000),)}, repair_s=3600)
    conditions = {"saw-01": Condition("DOWN", NOW)}
    saw = next(
        m for m in build(snap(conditions=conditions), rules).machines if m.machine_id == "saw-01"
    )
    assert saw.unavailable == (Interval(NOW, NOW + 5000),)


def test_merge_joins_touching_and_overlapping_intervals() -> None:
    got = merge([Interval(5, 9), Interval(0, 2), Interval(2, 4), Interval(8, 12), Interval(3, 3)])
    assert got == (Interval(0, 4), Interval(5, 12))


def test_off_shift_time_is_unavailable_around_the_shifts() -> None:
    # 2027-01-04 is a Monday.
    monday = int(datetime(2027, 1, 4, 12, tzinfo=UTC).timestamp())
    day = ShiftRule(frozenset({0, 1, 2, 3, 4}), time(6), time(22))
    gaps = off_shift([day], monday, days=2)
    midnight = int(datetime(2027, 1, 4, tzinfo=UTC).timestamp())
    assert Interval(midnight - 86_400, midnight + 6 * 3600) in gaps  # Sunday is off
    assert Interval(midnight + 22 * 3600, midnight + 30 * 3600) in gaps
    assert all(not (g.start < monday < g.end) for g in gaps)  # Monday noon is working time
    assert off_shift([], monday, 2) == ()


def test_a_night_shift_runs_past_midnight() -> None:
    monday = int(datetime(2027, 1, 4, tzinfo=UTC).timestamp())
    night = ShiftRule(frozenset({0}), time(22), time(6))
    gaps = off_shift([night], monday, days=1)
    assert not any(g.start < monday + 23 * 3600 < g.end for g in gaps)
    assert not any(g.start < monday + 86_400 + 3600 < g.end for g in gaps)
    assert any(g.start <= monday + 86_400 + 7 * 3600 < g.end for g in gaps)


def test_availability_changes_are_the_only_state_changes_that_trigger() -> None:
    running, idle = Condition("RUNNING", 10), Condition("IDLE", 20)
    down, maint = Condition("DOWN", 30), Condition("MAINTENANCE", 40)
    assert availability_change(None, down) is Trigger.MACHINE_DOWN
    assert availability_change(running, down) is Trigger.MACHINE_DOWN
    assert availability_change(down, maint) is None
    assert availability_change(maint, idle) is Trigger.MACHINE_UP
    assert availability_change(running, idle) is None
    assert availability_change(None, running) is None


def test_only_a_newer_state_replaces_the_known_one() -> None:
    assert newer(None, Condition("DOWN", 5))
    assert newer(Condition("RUNNING", 5), Condition("DOWN", 5))
    assert not newer(Condition("RUNNING", 6), Condition("DOWN", 5))


def test_drift_needs_a_planned_end_and_the_limit() -> None:
    assert drifted(1000, 1900, 900)
    assert drifted(1000, 100, 900)
    assert not drifted(1000, 1899, 900)
    assert not drifted(None, 99_999, 900)


def test_a_burst_of_triggers_coalesces_into_one_batch_most_urgent_first() -> None:
    burst = [
        Pending(7, "order-placed", 100.5),
        Pending(8, "machine-down", 100.2),
        Pending(9, "order-placed", 101.0),
        Pending(12, "manual", 101.3),
    ]
    batch = coalesce(burst)
    assert batch is not None
    assert batch.up_to == 12
    assert batch.first_at == 100.2
    assert batch.kinds == ("machine-down", "order-placed", "manual")
    assert batch.main == "machine-down"
    assert coalesce([]) is None


def test_a_plan_announces_only_operations_that_moved_and_are_not_running() -> None:
    progress = {("o1/1", 10): Progress("saw-01", started=NOW - 60)}
    previous = {("o1/2", 10): Assignment("o1/2", 10, "saw-01", NOW + 500, NOW + 920)}
    state = snap(lines=(line(), line(line_no=2)), progress=progress, previous=previous)
    problem = build(state, Rules())
    kept = previous[("o1/2", 10)]
    plan = Plan(
        assignments=(
            problem.frozen[("o1/1", 10)],
            Assignment("o1/1", 20, "cnc-01", NOW + 400, NOW + 86_500),  # ends after due
            kept,
            Assignment("o1/2", 20, "cnc-01", NOW + 86_500, NOW + 87_000),
        ),
        objective=Objective(weighted_tardiness=400, makespan=87_000, moved=0),
        status=SolveStatus.FEASIBLE,
        solve_seconds=0.25,
    )
    at = datetime(2027, 1, 4, tzinfo=UTC)
    out = news(
        plan_id="plant", version=3, problem=problem, plan=plan, triggers=("drift",), published_at=at
    )
    assert [(e.work_order_id, e.operation_seq) for e in out.scheduled] == [
        ("o1/1", 20),
        ("o1/2", 20),
    ]
    first = out.scheduled[0]
    assert (first.order_id, first.line_no, first.sku, first.machine_id) == (
        "o1",
        1,
        "stem",
        "cnc-01",
    )
    assert (first.planned_start, first.planned_end) == ((NOW + 400) * 1000, (NOW + 86_500) * 1000)
    assert (first.plan_id, first.plan_version) == ("plant", 3)
    published = out.published
    assert published.status is ContractStatus.FEASIBLE
    assert (published.operations_planned, published.operations_changed) == (4, 2)
    assert (published.operations_late, published.operations_unplanned) == (2, 0)
    assert (published.horizon_start, published.horizon_end) == (NOW * 1000, (NOW + 87_000) * 1000)
    assert published.objective.weighted_tardiness == 400
    assert published.triggers == ["drift"]
