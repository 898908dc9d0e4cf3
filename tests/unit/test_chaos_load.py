"""The chaos run's telemetry load: each device's event times strictly increase, so a partition
the load writes to never sees a reading behind its watermark."""

from __future__ import annotations

import random

from bench.chaos.load import tick_messages


def test_event_times_follow_the_clock_and_strictly_increase_per_device() -> None:
    rng = random.Random(1)
    last: dict[str, int] = {}
    first = tick_messages(rng, ["a", "b"], 3, last, 1_000)
    again = tick_messages(rng, ["a", "b"], 3, last, 1_000)  # the clock did not move
    later = tick_messages(rng, ["a", "b"], 3, last, 5_000)
    assert [(d, [r[:3] for r in rs]) for d, rs in first] == [
        ("a", [("a", "m0", 1_000), ("a", "m1", 1_000), ("a", "m2", 1_000)]),
        ("b", [("b", "m0", 1_000), ("b", "m1", 1_000), ("b", "m2", 1_000)]),
    ]
    assert {rs[0][2] for _, rs in again} == {1_001}
    assert {rs[0][2] for _, rs in later} == {5_000}
    assert last == {"a": 5_000, "b": 5_000}
