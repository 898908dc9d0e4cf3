"""The chaos run's scheduling checker and fault schedule on small hand-made inputs."""

from __future__ import annotations

from typing import Any

import orjson

from bench.chaos.faults import plan_faults
from bench.chaos.records import Rec
from bench.chaos.scheduling import PUBLISHED, SCHEDULED, Stored, check_scheduling


def event(topic: str, offset: int, **data: Any) -> Rec:
    return Rec(topic, 0, offset, None, orjson.dumps(data), {"ce_id": f"e{offset}".encode()})


def scheduled(
    offset: int, wo: str, seq: int, machine: str, start_s: int, end_s: int, version: int
) -> Rec:
    return event(
        SCHEDULED,
        offset,
        work_order_id=wo,
        operation_seq=seq,
        machine_id=machine,
        planned_start=start_s * 1000,
        planned_end=end_s * 1000,
        plan_version=version,
    )


PLAN = [Stored("w1", 1, "m1", 0, 10), Stored("w1", 2, "m2", 10, 20), Stored("w2", 1, "m1", 10, 15)]


def test_a_feasible_plan_matching_its_latest_publications_passes() -> None:
    events = [
        scheduled(0, "w1", 1, "m2", 0, 10, 1),  # moved by version 2
        scheduled(1, "w1", 1, "m1", 0, 10, 2),
        scheduled(2, "w1", 2, "m2", 10, 20, 1),  # unchanged since version 1
        scheduled(3, "w2", 1, "m1", 10, 15, 2),
        event(PUBLISHED, 0, version=1),
        event(PUBLISHED, 1, version=2),
    ]
    v = check_scheduling(2, PLAN, events)
    assert v.ok, v.problems
    assert v.figures["versions_published"] == 2


def test_overlaps_routing_order_and_stale_or_missing_publications_fail() -> None:
    plan = [Stored("w1", 1, "m1", 0, 10), Stored("w1", 2, "m2", 5, 20), Stored("w2", 1, "m1", 8, 9)]
    events = [scheduled(0, "w1", 1, "m1", 0, 12, 3), event(PUBLISHED, 0, version=2)]
    problems = "\n".join(check_scheduling(3, plan, events).problems)
    assert "m1: w1/1 overlaps w2/1" in problems
    assert "w1: operation 2 starts before 1 ends" in problems
    assert "plan version 3 stored but no schedule-published" in problems
    assert "w1/1: stored ('m1', 0, 10000), last published ('m1', 0, 12000)" in problems
    assert "w2/1 planned but never published" in problems


def test_a_started_operation_is_kept_where_it_began_without_a_new_announcement() -> None:
    plan = [Stored("w1", 1, "m2", 7, 17)]
    events = [scheduled(0, "w1", 1, "m1", 5, 15, 1), event(PUBLISHED, 0, version=2)]
    began = [Rec("production.operation-started.v1", 0, 0, None, orjson.dumps(
        {"work_order_id": "w1", "operation_seq": 1, "machine_id": "m2", "ts": 7_400}))]  # fmt: skip
    v = check_scheduling(2, plan, events, began)
    assert v.ok, v.problems
    assert v.figures["started_kept_where_they_began"] == 1
    elsewhere = [Rec("production.operation-started.v1", 0, 0, None, orjson.dumps(
        {"work_order_id": "w1", "operation_seq": 1, "machine_id": "m3", "ts": 7_400}))]  # fmt: skip
    assert (
        "w1/1: stored ('m2', 7000, 17000), started ('m3', 7)"
        in check_scheduling(2, plan, events, elsewhere).problems[0]
    )


def test_the_fault_plan_spreads_every_service_kill_and_restarts_each_server_once() -> None:
    faults = plan_faults(7, 300.0, ("a", "b"), 10, (1.0, 5.0), 5.0)
    assert faults == plan_faults(7, 300.0, ("a", "b"), 10, (1.0, 5.0), 5.0)
    assert faults != plan_faults(8, 300.0, ("a", "b"), 10, (1.0, 5.0), 5.0)
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    for name in ("a", "b"):
        times = [f.at_s for f in faults if f.target == name]
        assert len(times) == 10
        # one kill in each tenth of [15 s, 270 s]
        assert [int((t - 15.0) // 25.5) for t in times] == list(range(10))
    assert [f.target for f in faults if f.target in ("kafka", "postgres")] == ["kafka", "postgres"]
    assert all(1.0 <= f.pause_s <= 5.0 for f in faults)
