"""OEE of one machine over one period: availability, performance, quality."""

from __future__ import annotations

import pytest

from services.scheduling.domain.model import Interval
from services.scheduling.domain.oee import Completion, oee, planned, running

HOUR = Interval(3600, 7200)


def test_planned_time_is_the_period_minus_the_calendar() -> None:
    off = [Interval(0, 3900), Interval(5000, 5600), Interval(7000, 9000)]
    assert planned(HOUR, off) == [Interval(3900, 5000), Interval(5600, 7000)]
    assert planned(HOUR, []) == [HOUR]


def test_running_time_counts_only_running_inside_planned_time() -> None:
    states = [(3000, "RUNNING"), (4000, "DOWN"), (4500, "RUNNING"), (6000, "IDLE")]
    assert running(states, [HOUR], HOUR.end) == (4000 - 3600) + (6000 - 4500)
    assert running(states, [Interval(3600, 4200)], HOUR.end) == 400
    assert running([], [HOUR], HOUR.end) == 0
    assert running([(7000, "RUNNING")], [HOUR], HOUR.end) == 200


def test_the_three_factors_and_their_product() -> None:
    states = [(0, "RUNNING"), (3600 + 2700, "DOWN")]
    done = [
        Completion(ideal_s=600, actual_s=800, good=9, scrap=1),
        Completion(ideal_s=1000, actual_s=1200, good=10, scrap=0),
    ]
    f = oee(HOUR, [Interval(6900, 7200)], states, done)
    assert (f.planned_s, f.running_s) == (3300, 2700)
    assert f.availability == pytest.approx(2700 / 3300)
    assert f.performance == pytest.approx(1600 / 2000)
    assert f.quality == pytest.approx(19 / 20)
    assert f.oee == pytest.approx(2700 / 3300 * 0.8 * 0.95)


def test_undefined_factors_are_none_and_performance_is_capped() -> None:
    f = oee(HOUR, [HOUR], [(0, "RUNNING")], [])
    assert (f.planned_s, f.availability, f.performance, f.quality, f.oee) == (
        0,
        None,
        None,
        None,
        None,
    )
    fast = oee(HOUR, [], [(0, "RUNNING")], [Completion(900, 600, 1, 0)])
    assert fast.performance == 1.0
    assert fast.oee == 1.0
