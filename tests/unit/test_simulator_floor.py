"""The simulated shop floor executes the plan: starts an operation on its planned machine
once it is due, its predecessor is done and the machine is free and whole; completes it after
its planned duration; follows re-plans; a broken machine starts nothing."""

from __future__ import annotations

from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled
from millrace.simulator.breakdowns import Breakdowns
from millrace.simulator.floor import Floor, previous_seq

ROUTINGS = {"stem-cnc": (10, 20, 30)}
MACHINES = ("saw-01", "saw-02", "cnc-01")


def planned(seq: int, machine: str, start: int, end: int, wo: str = "o-1/1") -> OperationScheduled:
    order_id, _, line = wo.partition("/")
    return OperationScheduled(
        work_order_id=wo,
        order_id=order_id,
        line_no=int(line),
        sku="stem-cnc",
        operation_seq=seq,
        machine_id=machine,
        planned_start=start,
        planned_end=end,
    )


def floor() -> Floor:
    f = Floor(MACHINES, ROUTINGS, seed=3)
    f.set_quantity("o-1/1", 4)
    return f


def test_previous_seq_follows_the_routing() -> None:
    assert previous_seq((10, 20, 30), 10) is None
    assert previous_seq((10, 20, 30), 30) == 20
    assert previous_seq((), 20) is None


def test_an_operation_starts_when_due_and_completes_after_its_duration() -> None:
    f = floor()
    f.schedule(planned(10, "saw-01", 1_000, 4_000))
    assert f.step(999) == []
    [started] = f.step(1_200)
    assert isinstance(started, OperationStarted)
    assert (started.machine_id, started.operation_seq, started.ts) == ("saw-01", 10, 1_200)
    assert f.working("saw-01")
    assert f.step(4_100) == []  # 3 s from its actual start, not its planned end
    [done] = f.step(4_200)
    assert isinstance(done, OperationCompleted)
    assert (done.machine_id, done.ts) == ("saw-01", 4_200)
    assert done.quantity_good + done.quantity_scrap == 4
    assert not f.working("saw-01")


def test_the_next_operation_waits_for_its_predecessor() -> None:
    f = floor()
    f.schedule(planned(10, "saw-01", 0, 5_000))
    f.schedule(planned(20, "cnc-01", 1_000, 2_000))  # planned too early on purpose
    [start10] = f.step(0)
    assert start10.operation_seq == 10
    assert f.step(3_000) == []
    events = f.step(5_000)
    assert [(type(e).__name__, e.operation_seq) for e in events] == [
        ("OperationCompleted", 10),
        ("OperationStarted", 20),
    ]


def test_a_busy_machine_takes_the_next_operation_when_free() -> None:
    f = floor()
    f.schedule(planned(10, "saw-01", 0, 3_000, wo="o-1/1"))
    f.schedule(planned(10, "saw-01", 500, 1_500, wo="o-2/1"))
    assert [e.work_order_id for e in f.step(1_000)] == ["o-1/1"]
    assert f.step(3_999) == []  # started at 1 s for 3 s
    events = f.step(4_000)
    assert [(type(e).__name__, e.work_order_id) for e in events] == [
        ("OperationCompleted", "o-1/1"),
        ("OperationStarted", "o-2/1"),
    ]


def test_a_replan_moves_an_operation_not_yet_started() -> None:
    f = floor()
    f.schedule(planned(10, "saw-01", 2_000, 3_000))
    f.schedule(planned(10, "saw-02", 1_000, 2_000))  # the re-plan's assignment wins
    [started] = f.step(1_000)
    assert started.machine_id == "saw-02"


def test_a_broken_machine_starts_nothing_and_its_running_operation_is_paused() -> None:
    f = floor()
    f.schedule(planned(10, "saw-01", 0, 2_000, wo="o-1/1"))
    f.schedule(planned(10, "saw-01", 100, 1_100, wo="o-2/1"))
    [first] = f.step(0)
    assert first.work_order_id == "o-1/1"
    f.break_machine("saw-01", 500, repair_ms=10_000)
    assert f.broken("saw-01")
    assert not f.working("saw-01")
    assert f.step(5_000) == []  # neither completes nor starts while broken
    assert f.step(10_500) == []  # repaired: 1.5 s of the operation are left
    assert not f.broken("saw-01")
    assert f.working("saw-01")
    events = f.step(12_000)
    assert [(type(e).__name__, e.work_order_id) for e in events] == [
        ("OperationCompleted", "o-1/1"),
        ("OperationStarted", "o-2/1"),
    ]


def test_operations_read_back_from_kafka_are_not_started_again() -> None:
    f = floor()
    op = planned(10, "saw-01", 0, 1_000)
    f.schedule(op)
    started = OperationStarted(
        work_order_id="o-1/1", order_id="o-1", line_no=1, operation_seq=10,
        machine_id="saw-01", ts=0,
    )  # fmt: skip
    f.observe_started(started)
    assert f.step(200) == []
    assert f.working("saw-01")
    [done] = f.step(1_000)
    assert isinstance(done, OperationCompleted)
    f.observe_completed(done)
    assert f.step(2_000) == []


def test_breakdowns_are_seeded_and_hit_machines_with_work_waiting() -> None:
    def victims(seed: int) -> list[str]:
        f = floor()
        f.schedule(planned(10, "saw-02", 10**9, 10**9 + 1))
        b = Breakdowns(seed, every_s=10, repair_s=5)
        out = []
        for now in range(0, 120_000, 500):
            broken = b.due(now, f)
            if broken is not None:
                out.append(broken.machine_id)
            f.step(now)
        return out

    first = victims(1)
    assert first == victims(1)
    assert len(first) >= 6
    assert set(first) == {"saw-02"}  # the only machine with planned work
    assert Breakdowns(1, every_s=0, repair_s=5).due(10**6, floor()) is None


def test_assignments_that_ended_before_the_floor_started_are_history() -> None:
    f = Floor(MACHINES, ROUTINGS, since_ms=10_000)
    f.schedule(planned(10, "saw-01", 0, 9_999))
    f.schedule(planned(10, "saw-02", 5_000, 12_000, wo="o-2/1"))
    assert [e.work_order_id for e in f.step(10_000)] == ["o-2/1"]


def test_a_start_read_before_its_plan_entry_still_holds_the_machine_after_a_restart() -> None:
    f = floor()
    started = OperationStarted(
        work_order_id="o-1/1", order_id="o-1", line_no=1, operation_seq=10,
        machine_id="saw-01", ts=1_000,
    )  # fmt: skip
    f.observe_started(started)
    f.schedule(planned(10, "saw-01", 1_000, 4_000))
    f.schedule(planned(10, "saw-01", 1_500, 2_500, wo="o-2/1"))
    assert f.step(2_000) == []  # saw-01 is busy with the resumed operation, not started again
    assert f.working("saw-01")
    events = f.step(4_000)
    assert [(type(e).__name__, e.work_order_id) for e in events] == [
        ("OperationCompleted", "o-1/1"),
        ("OperationStarted", "o-2/1"),
    ]


def test_a_start_of_another_plan_takes_no_machine() -> None:
    f = floor()
    foreign = OperationStarted(
        work_order_id="x-9/1", order_id="x-9", line_no=1, operation_seq=10,
        machine_id="saw-01", ts=0,
    )  # fmt: skip
    f.observe_started(foreign)
    f.schedule(planned(10, "saw-01", 0, 1_000))
    [started] = f.step(0)
    assert started.work_order_id == "o-1/1"


def test_a_started_operation_whose_plan_ended_before_a_restart_is_still_completed() -> None:
    f = Floor(MACHINES, ROUTINGS, since_ms=60_000)
    f.schedule(planned(10, "saw-01", 0, 1_000))
    f.observe_started(
        OperationStarted(
            work_order_id="o-1/1", order_id="o-1", line_no=1, operation_seq=10,
            machine_id="saw-01", ts=500,
        )
    )  # fmt: skip
    [done] = f.step(60_000)
    assert isinstance(done, OperationCompleted)
    assert (done.work_order_id, done.ts) == ("o-1/1", 60_000)
