"""The chaos run's telemetry load: each device's event times strictly increase, the first
device trails the clock as a gateway uploading its backlog, and the second sends a reading
behind its own clock now and then, so the per-device rules and the late topic are exercised."""

from __future__ import annotations

import random

import orjson

from bench.chaos.load import BACKLOG_MS, LATE_BEHIND_MS, LATE_EVERY, tick_messages
from bench.chaos.records import Rec
from bench.chaos.windows import expected_windows


def test_event_times_follow_the_clock_and_strictly_increase_per_device() -> None:
    rng = random.Random(1)
    last: dict[str, int] = {}
    now = BACKLOG_MS + 1_000
    first = tick_messages(rng, ["g", "a", "b"], 3, last, now)
    again = tick_messages(rng, ["g", "a", "b"], 3, last, now)  # the clock did not move
    later = tick_messages(rng, ["g", "a", "b"], 3, last, now + 4_000)
    assert [(d, [r[:3] for r in rs]) for d, rs in first] == [
        ("g", [("g", "m0", 1_000), ("g", "m1", 1_000), ("g", "m2", 1_000)]),
        ("a", [("a", "m0", now), ("a", "m1", now), ("a", "m2", now)]),
        ("b", [("b", "m0", now), ("b", "m1", now), ("b", "m2", now)]),
    ]
    assert [rs[0][2] for _, rs in again] == [1_001, now + 1, now + 1]
    assert [rs[0][2] for _, rs in later] == [5_000, now + 4_000, now + 4_000]
    assert last == {"g": 5_000, "a": now + 4_000, "b": now + 4_000}


def test_the_second_device_sends_one_reading_behind_its_clock_every_few_ticks() -> None:
    rng = random.Random(1)
    last: dict[str, int] = {}
    ticks = [
        tick_messages(rng, ["g", "a"], 1, last, 1_000_000 + 500 * n, n)
        for n in range(2 * LATE_EVERY)
    ]
    extra = [(n, rs[-1][2]) for n, t in enumerate(ticks) for d, rs in t if d == "a" and len(rs) > 1]
    assert extra == [
        (LATE_EVERY - 1, 1_000_000 + 500 * (LATE_EVERY - 1) - LATE_BEHIND_MS),
        (2 * LATE_EVERY - 1, 1_000_000 + 500 * (2 * LATE_EVERY - 1) - LATE_BEHIND_MS),
    ]


def test_by_the_rules_the_backlog_is_on_time_and_the_reading_behind_is_late() -> None:
    rng = random.Random(1)
    last: dict[str, int] = {}
    recs: list[Rec] = []
    for n in range(LATE_EVERY):
        for d, rs in tick_messages(rng, ["g", "a"], 1, last, 1_000_000 + 500 * n, n):
            rows = [{"metric": m, "ts": ts, "value": v} for _, m, ts, v in rs]
            value = orjson.dumps({"device_id": d, "readings": rows})
            recs.append(Rec("telemetry.readings.v1", 0, len(recs), d.encode(), value))
    exp = expected_windows(recs, (10_000, 60_000), 2_000, 900_000)
    # g trails a by BACKLOG_MS on the same partition and none of its readings is late; a's
    # extra reading in the last tick (its record is the partition's last) is.
    behind = 1_000_000 + 500 * (LATE_EVERY - 1) - LATE_BEHIND_MS
    assert {source: [ts for _, ts, _ in rows] for source, rows in exp.late_records.items()} == {
        (0, len(recs) - 1): [behind]
    }
