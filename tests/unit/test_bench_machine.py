"""The latency benchmark's account of the machine's CPU (bench/telemetry/machine.py)."""

from __future__ import annotations

import sys

import pytest

from bench.telemetry.machine import busy_share, machine_jiffies, own_cpu_s


def test_busy_share_is_the_busy_part_of_the_ticks_between_two_readings() -> None:
    assert busy_share((100, 1000), (250, 1200)) == 0.75
    assert busy_share((100, 1000), (100, 1200)) == 0.0


@pytest.mark.parametrize(("before", "after"), [(None, (1, 2)), ((1, 2), None), ((5, 10), (5, 10))])
def test_busy_share_is_unknown_without_two_readings_apart(
    before: tuple[int, int] | None, after: tuple[int, int] | None
) -> None:
    assert busy_share(before, after) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_machine_ticks_and_own_cpu_grow_with_work() -> None:
    before, own = machine_jiffies(), own_cpu_s()
    assert before is not None
    assert 0 <= before[0] <= before[1]
    while own_cpu_s() - own < 0.05:  # busy for at least 50 ms of CPU (5 ticks at 100 Hz)
        sum(range(10_000))
    after = machine_jiffies()
    assert after is not None
    assert after[0] > before[0]
    assert after[1] > before[1]
    share = busy_share(before, after)
    assert share is not None
    assert 0.0 < share <= 1.0
