"""The latency benchmark (bench/telemetry/latency.py): alarm latency since the reading reached
the broker, and a start that puts a minute boundary's close inside every run's measured time."""

from __future__ import annotations

import pytest

from bench.telemetry.latency import WARMUP_S, since_arrival, since_close, start_delay_s


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


def test_each_window_counts_from_its_devices_first_reading_at_or_past_its_deadline() -> None:
    sent = {"dev-1": ([1_000, 1_550, 2_100], [1_010, 1_570, 2_130]), "dev-2": ([1_300], [1_320])}
    windows = [
        ("dev-1", 1_500, 1_600),  # closed by the reading at 1_550, appended at 1_570
        ("dev-1", 1_550, 1_700),  # a reading exactly at the deadline closes it
        ("dev-2", 1_200, 1_400),
    ]
    assert since_close(windows, sent) == [30, 130, 80]


def test_a_window_no_reading_of_its_device_closed_is_left_out() -> None:
    sent = {"dev-1": ([1_000], [1_010])}
    assert since_close([("dev-1", 1_500, 9_000), ("dev-9", 0, 5)], sent) == []


@pytest.mark.parametrize(
    "now", [1_800_000_000.0, 1_800_000_013.7, 1_800_000_047.2, 1_800_000_059.9]
)
def test_a_run_starts_so_that_its_first_close_is_in_the_warm_up_and_a_minutes_is_measured(
    now: float,
) -> None:
    delay = start_delay_s(now, at_least_s=6)
    assert 6 <= delay < 66
    start = now + delay
    boundary = start + 0.5  # a 10 s boundary: its windows close 5 s (the lateness) later
    assert round(boundary * 1000) % 10_000 == 0
    assert start < boundary + 5 < start + WARMUP_S  # the first close: in the warm-up
    minute_close = boundary + 20 + 5
    assert round((minute_close - 5) * 1000) % 60_000 == 0
    assert start + WARMUP_S < minute_close < start + WARMUP_S + 40  # measured (40 s runs)
