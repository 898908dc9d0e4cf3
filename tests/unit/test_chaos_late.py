"""The chaos run's late-readings checker and its closing readings, on hand-made partitions."""

from __future__ import annotations

import orjson

from bench.chaos.drain import CLOSE_METRIC, CLOSER_AHEAD_MS, closers
from bench.chaos.late import check_late
from bench.chaos.records import Rec
from bench.chaos.windows import expected_windows

SIZES = (10_000, 60_000)
LATE = 2_000
HORIZON = 900_000


def reading(offset: int, device: str, *rows: tuple[int, float], partition: int = 0) -> Rec:
    value = {
        "device_id": device,
        "readings": [{"metric": "t", "ts": ts, "value": v} for ts, v in rows],
    }
    return Rec("telemetry.readings.v1", partition, offset, device.encode(), orjson.dumps(value))


def late(offset: int, source: tuple[int, int], device: str, *rows: tuple[int, float]) -> Rec:
    value = {
        "device_id": device,
        "readings": [{"metric": "t", "ts": ts, "value": v, "quality": "good"} for ts, v in rows],
    }
    headers = {
        "late_source_topic": b"telemetry.readings.v1",
        "late_source_partition": str(source[0]).encode(),
        "late_source_offset": str(source[1]).encode(),
    }
    return Rec("telemetry.readings.v1.late", 0, offset, device.encode(), orjson.dumps(value),
               headers)  # fmt: skip


READINGS = [
    reading(0, "d", (1_000, 1.0)),
    reading(1, "d", (13_000, 2.0)),
    reading(2, "d", (5_000, 9.0), (14_000, 3.0), (4_000, 8.0)),  # 5 000 and 4 000 are late
    reading(0, "e", (1_000, 1.0), partition=1),
]


def test_every_late_reading_on_the_late_topic_passes_and_repeats_are_counted() -> None:
    exp = expected_windows(READINGS, SIZES, LATE, HORIZON)
    assert exp.late_records == {(0, 2): [("t", 5_000, 9.0), ("t", 4_000, 8.0)]}
    sent = late(0, (0, 2), "d", (5_000, 9.0), (4_000, 8.0))
    v = check_late(exp, [sent, late(1, (0, 2), "d", (5_000, 9.0), (4_000, 8.0))])
    assert v.ok, v.problems
    assert v.figures["late_records_sent_again"] == 1
    assert v.figures["late_readings_by_rule"] == 2


def test_a_late_record_missing_extra_or_different_fails() -> None:
    exp = expected_windows(READINGS, SIZES, LATE, HORIZON)
    missing = check_late(exp, [])
    assert not missing.ok
    assert missing.figures["late_records_missing"] == 1
    extra = check_late(
        exp, [late(0, (0, 2), "d", (5_000, 9.0), (4_000, 8.0)), late(1, (0, 1), "d", (13_000, 2.0))]
    )
    assert not extra.ok
    assert any("none of its readings is late" in p for p in extra.problems)
    different = check_late(exp, [late(0, (0, 2), "d", (5_000, 9.0))])
    assert not different.ok
    assert any("the rule calls late" in p for p in different.problems)


def test_one_closing_reading_per_device_on_its_partition_past_the_newest_reading() -> None:
    recs = [*READINGS, Rec("telemetry.readings.v1", 1, 1, None, b"\xff poison")]
    got = closers(recs, now_ms=10_000)
    ts = 14_000 + CLOSER_AHEAD_MS
    assert got == [(0, "d", ts), (1, "e", ts)]
    later = 50_000 + CLOSER_AHEAD_MS  # the wall clock ahead of every reading
    assert closers(recs, now_ms=50_000) == [(0, "d", later), (1, "e", later)]


def test_the_closing_readings_close_every_window_and_leave_their_own_open() -> None:
    recs = [*READINGS, reading(2, "e", (70_000, 5.0), partition=1)]
    closing = []
    for n, (p, device, ts) in enumerate(closers(recs, now_ms=0)):
        value = {"device_id": device, "readings": [{"metric": CLOSE_METRIC, "ts": ts, "value": 0}]}
        closing.append(Rec("telemetry.readings.v1", p, 10 + n, None, orjson.dumps(value)))
    exp = expected_windows([*recs, *closing], SIZES, LATE, HORIZON)
    assert exp.closed == {k for k in exp.windows if k[1] != CLOSE_METRIC}
