"""Pacing math and batching of the simulator's timeline."""

from __future__ import annotations

import itertools
from collections import Counter

from millrace.simulator import BatchBuilder, SimulatorConfig, generate
from millrace.simulator.runner import route
from millrace.simulator.schedule import Schedule

START = 1_732_262_400_000


def test_rate_is_met_exactly_without_drift() -> None:
    cfg = SimulatorConfig(devices=7, metrics=3, rate=2000, tick_ms=100)
    schedule = Schedule(cfg)
    per_tick = [schedule.readings_in(range(t, t + 1)) for t in range(100)]
    assert 20_000 <= sum(per_tick) < 20_000 + cfg.metrics  # whole samples of 3 readings
    assert schedule.readings_in(range(10_000)) - 200 * 10_000 < cfg.metrics
    assert max(per_tick) - min(per_tick) <= 3


def test_uneven_rates_do_not_accumulate_rounding() -> None:
    cfg = SimulatorConfig(devices=3, metrics=7, rate=333.3, tick_ms=70)
    schedule = Schedule(cfg)
    ticks = round(60_000 / 70)
    assert abs(schedule.readings_in(range(ticks)) - 333.3 * 60) <= 7


def test_ticks_partition_the_samples() -> None:
    schedule = Schedule(SimulatorConfig(devices=5, metrics=2, rate=123, tick_ms=37))
    seen = [s for t in range(200) for s in schedule.tick_samples(t)]
    assert seen == list(range(len(seen)))


def test_pacing_deadlines_are_absolute() -> None:
    schedule = Schedule(SimulatorConfig(tick_ms=100))
    assert [schedule.tick_end_s(t) for t in (0, 1, 99)] == [0.1, 0.2, 10.0]


def test_count_is_exact_even_mid_sample() -> None:
    cfg = SimulatorConfig(devices=3, metrics=4, rate=0, start_ms=START, count=1001)
    assert sum(len(b["readings"]) for _, b in generate(cfg)) == 1001


def test_duration_bounds_the_fixed_timeline() -> None:
    cfg = SimulatorConfig(devices=2, metrics=3, rate=60, start_ms=START, duration_s=10)
    readings = [r for _, b in generate(cfg) for r in b["readings"]]
    assert len(readings) == 600
    assert all(START <= r["ts"] < START + 10_000 for r in readings)


def test_fixed_timeline_spaces_each_device_by_its_period() -> None:
    cfg = SimulatorConfig(
        devices=4, metrics=2, rate=0, sample_interval_ms=500, start_ms=START, count=80
    )
    ts: dict[str, list[int]] = {}
    for device, batch in generate(cfg):
        ts.setdefault(device, []).append(batch["readings"][0]["ts"])
    for times in ts.values():
        assert {b - a for a, b in itertools.pairwise(times)} == {500}


def test_default_batch_is_one_message_per_device_per_tick() -> None:
    cfg = SimulatorConfig(devices=10, metrics=3, rate=300, start_ms=START, duration_s=5)
    batches = list(generate(cfg))
    assert len(batches) == 10 * 50
    assert all(len(b["readings"]) == 3 for _, b in batches)


def test_batch_k_fills_messages_across_ticks() -> None:
    cfg = SimulatorConfig(devices=3, metrics=3, rate=90, start_ms=START, count=900, batch=50)
    batches = list(generate(cfg))
    sizes = Counter(len(b["readings"]) for _, b in batches)
    assert sizes[50] == 18
    assert sum(len(b["readings"]) for _, b in batches) == 900
    for device in {d for d, _ in batches}:
        ts = [r["ts"] for d, b in batches if d == device for r in b["readings"]]
        assert ts == sorted(ts)


def test_live_timestamps_come_from_the_wall_clock_at_emission() -> None:
    builder = BatchBuilder(SimulatorConfig(devices=2, metrics=1, rate=40, tick_ms=100))
    messages = builder.tick(0, now_ms=5_000_000)
    stamps = sorted(r["ts"] for m in messages for r in m.batch["readings"])
    assert stamps == [4_999_900, 4_999_925, 4_999_950, 4_999_975]


def test_both_transports_split_devices_by_parity_deterministically() -> None:
    cfg = SimulatorConfig(devices=6, metrics=2, rate=0, tick_ms=1000, start_ms=START, count=60)
    parts = route(BatchBuilder(cfg).tick(0), "both")
    assert {m.device_index for m in parts["kafka"]} == {0, 2, 4}
    assert {m.device_index for m in parts["http"]} == {1, 3, 5}
    assert route(BatchBuilder(cfg).tick(0), "both") == parts
    everything = sorted(parts["kafka"] + parts["http"], key=lambda m: m.device_index)
    assert route(BatchBuilder(cfg).tick(0), "http") == {"http": everything}
