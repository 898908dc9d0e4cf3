"""The latency benchmark's alarm latency since the reading reached the broker
(bench/telemetry/latency.py)."""

from __future__ import annotations

from bench.telemetry.latency import since_arrival


def test_each_alarm_counts_from_its_own_readings_arrival() -> None:
    arrived = {
        ("alarm-dev-0", 1_000): 1_030,
        ("alarm-dev-1", 1_000): 1_200,
        ("alarm-dev-0", 1_250): 1_260,
    }
    alarms = [
        ("alarm-dev-0", 1_000, 1_045),
        ("alarm-dev-1", 1_000, 1_210),
        ("alarm-dev-0", 1_250, 1_300),
    ]
    assert since_arrival(alarms, arrived) == [15, 10, 40]


def test_an_alarm_whose_reading_was_not_read_is_left_out() -> None:
    assert since_arrival([("alarm-dev-2", 5, 90)], {("alarm-dev-2", 6): 50}) == []
