"""The chaos run's telemetry checkers on small hand-made partitions."""

from __future__ import annotations

import math

import orjson

from bench.chaos.records import Rec
from bench.chaos.windows import Stats, check_delivered, check_windows, expected_windows

SIZES = (10_000, 60_000)
LATE = 2_000
HORIZON = 900_000


def reading(offset: int, device: str, *rows: tuple[int, float], partition: int = 0) -> Rec:
    value = {
        "device_id": device,
        "readings": [{"metric": "t", "ts": ts, "value": v} for ts, v in rows],
    }
    return Rec("telemetry.readings.v1", partition, offset, device.encode(), orjson.dumps(value))


def aggregate(offset: int, ce_id: str, device: str, size: int, start: int, s: Stats) -> Rec:
    value = {
        "device_id": device, "metric": "t", "window_start": start, "window_end": start + size,
        "count": s.count, "min": s.min, "max": s.max, "mean": s.mean, "stddev": s.stddev,
        "last": s.last,
    }  # fmt: skip
    return Rec("telemetry.aggregates.v1", 0, offset, device.encode(), orjson.dumps(value),
               {"ce_id": ce_id.encode()})  # fmt: skip


def test_statistics_and_closing_follow_the_device_clock() -> None:
    recs = [
        reading(0, "d", (1_000, 1.0), (2_000, 3.0)),
        Rec("telemetry.readings.v1", 0, 1, None, b"\xff not json"),  # poison
        reading(2, "d", (12_000, 5.0)),
        reading(3, "d", (75_000, 7.0)),
    ]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    assert exp.windows[("d", "t", 10_000, 0)] == Stats(2, 1.0, 3.0, 2.0, 1.0, 3.0)
    sixty = exp.windows[("d", "t", 60_000, 0)]
    assert (sixty.count, sixty.min, sixty.max, sixty.last) == (3, 1.0, 5.0, 5.0)
    assert math.isclose(sixty.stddev, math.sqrt(8 / 3))
    # The final clock 75 000 closes [0,10s), [10s,20s) and [0,60s), not [70s,80s) or [60s,120s).
    assert exp.closed == {("d", "t", 10_000, 0), ("d", "t", 10_000, 10_000), ("d", "t", 60_000, 0)}
    assert (exp.readings, exp.poison, exp.late) == (4, 1, 0)


def test_a_reading_behind_its_device_clock_is_late_for_the_closed_size_only() -> None:
    recs = [
        reading(0, "d", (1_000, 1.0)),
        reading(1, "d", (13_000, 2.0)),
        reading(2, "d", (5_000, 9.0)),
    ]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    # 0 + 10 000 + 2 000 <= 13 000: late for 10 s; the 60 s window takes it.
    assert exp.windows[("d", "t", 10_000, 0)].count == 1
    assert exp.windows[("d", "t", 60_000, 0)].count == 3
    assert exp.late == 1
    assert exp.late_records == {(0, 2): [("t", 5_000, 9.0)]}


def test_a_backlog_behind_another_devices_newer_readings_is_on_time() -> None:
    recs = [
        reading(0, "a", (1_000, 1.0)),
        reading(1, "b", (100_000, 2.0)),  # b's clock, not a's
        reading(2, "a", (5_000, 3.0), (15_000, 4.0)),
    ]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    assert exp.windows[("a", "t", 10_000, 0)].count == 2
    assert (exp.late, exp.late_records) == (0, {})
    # a's own clock (15 000) closes a's [0,10s); b's (100 000) would close all of a's, but
    # does not.
    assert exp.closed == {("a", "t", 10_000, 0)}
    # Once a's clock passes them, a's windows close.
    exp = expected_windows([*recs, reading(3, "a", (70_000, 5.0))], SIZES, LATE, HORIZON)
    assert {k for k in exp.closed if k[0] == "a"} == {
        ("a", "t", 10_000, 0), ("a", "t", 10_000, 10_000), ("a", "t", 60_000, 0)
    }  # fmt: skip


def test_the_floor_makes_a_trailing_backlog_late_and_closes_a_quiet_devices_windows() -> None:
    horizon = 30_000
    recs = [
        reading(0, "a", (1_000, 1.0)),
        reading(1, "b", (50_000, 2.0)),
        # The floor is 50 000 - 30 000 = 20 000: a's window [0,10s) has closed (12 000 <= 20 000),
        # its 60 s window not.
        reading(2, "a", (2_000, 3.0)),
        reading(3, "b", (200_000, 4.0)),
    ]
    exp = expected_windows(recs, SIZES, LATE, horizon)
    assert exp.windows[("a", "t", 10_000, 0)].count == 1
    assert exp.windows[("a", "t", 60_000, 0)].count == 2
    assert exp.late_records == {(0, 2): [("t", 2_000, 3.0)]}
    # a sent nothing more; the final floor 170 000 closes all of a's windows.
    assert ("a", "t", 60_000, 0) in exp.closed
    # With the default horizon the floor is far behind: a's 60 s window stays open.
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    assert exp.late == 0
    assert ("a", "t", 60_000, 0) not in exp.closed


def test_partitions_have_their_own_watermark_and_ties_keep_the_later_arrival() -> None:
    recs = [
        reading(0, "a", (50_000, 1.0), partition=0),
        reading(0, "b", (1_000, 4.0), partition=1),
        reading(1, "b", (1_000, 6.0), partition=1),
    ]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    assert exp.windows[("b", "t", 10_000, 0)].last == 6.0
    assert exp.late == 0


def test_check_windows_passes_matching_output_and_counts_identical_repeats() -> None:
    recs = [reading(0, "d", (1_000, 1.0), (2_000, 3.0)), reading(1, "d", (70_000, 0.0))]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    got = [
        aggregate(0, "x", "d", 10_000, 0, exp.windows[("d", "t", 10_000, 0)]),
        aggregate(1, "x", "d", 10_000, 0, exp.windows[("d", "t", 10_000, 0)]),
        aggregate(2, "y", "d", 60_000, 0, exp.windows[("d", "t", 60_000, 0)]),
    ]
    v = check_windows(exp, got)
    assert v.ok, v.problems
    assert v.figures["duplicate_emits_same_content"] == 1


def test_check_windows_reports_missing_wrong_and_two_contents() -> None:
    recs = [reading(0, "d", (1_000, 1.0), (2_000, 3.0)), reading(1, "d", (70_000, 0.0))]
    exp = expected_windows(recs, SIZES, LATE, HORIZON)
    right = exp.windows[("d", "t", 10_000, 0)]
    wrong = Stats(2, 1.0, 3.0, 2.5, 1.0, 3.0)
    v = check_windows(exp, [aggregate(0, "x", "d", 10_000, 0, right),
                            aggregate(1, "x", "d", 10_000, 0, wrong)])  # fmt: skip
    assert not v.ok
    assert any("two contents" in p for p in v.problems)
    assert any("60000, 0) closed" in p for p in v.problems)
    v = check_windows(exp, [aggregate(0, "z", "d", 10_000, 0, wrong)])
    assert any("mean 2.5 != 2.0" in p for p in v.problems)


def test_delivered_finds_an_acknowledged_reading_missing_from_the_topic() -> None:
    recs = [reading(0, "d", (1_000, 1.0)), reading(1, "d", (1_000, 1.0))]
    ok = check_delivered([("d", "t", 1_000, 1.0)], recs)
    assert ok.ok
    assert ok.figures["readings_sent_again"] == 1
    bad = check_delivered([("d", "t", 1_000, 1.0), ("d", "t", 2_000, 2.0)], recs)
    assert not bad.ok
    assert bad.problem_count == 1
