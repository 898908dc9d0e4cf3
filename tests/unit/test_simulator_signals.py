"""The simulator's signal models and batches: seeded, plausible, and valid against the contract."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from contracts.telemetry import ReadingsBatch
from millrace.simulator import ConfigError, SimulatorConfig, generate
from millrace.simulator.signals import BASE_METRICS, device_id, metric_names

START = 1_732_262_400_000


def timeline(**overrides: object) -> SimulatorConfig:
    base: dict[str, object] = {
        "devices": 4,
        "metrics": 5,
        "rate": 0,
        "sample_interval_ms": 1000,
        "start_ms": START,
        "duration_s": 900,
        "seed": 7,
    }
    base.update(overrides)
    return SimulatorConfig(**base)  # type: ignore[arg-type]


def series(cfg: SimulatorConfig) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for device, batch in generate(cfg):
        for r in batch["readings"]:
            out[(device, r["metric"])].append(r["value"])
    return out


def test_device_ids_cycle_machine_types() -> None:
    assert [device_id(i) for i in range(5)] == [
        "press-0001",
        "mill-0002",
        "lathe-0003",
        "grinder-0004",
        "press-0005",
    ]


def test_metric_names_start_with_the_core_three_and_suffix_past_the_catalogue() -> None:
    names = metric_names(len(BASE_METRICS) + 2)
    assert names[:3] == ["spindle_temp_c", "vibration_mm_s", "spindle_rpm"]
    assert names[-2:] == ["spindle_temp_c_2", "vibration_mm_s_2"]
    assert len(set(metric_names(40))) == 40


def test_same_seed_same_readings() -> None:
    assert list(generate(timeline())) == list(generate(timeline()))


def test_different_seeds_differ() -> None:
    a = [b for _, b in generate(timeline(seed=1))]
    b = [b for _, b in generate(timeline(seed=2))]
    assert len(a) == len(b)
    assert a != b


def test_every_batch_validates_against_the_contract() -> None:
    batches = list(generate(timeline(metrics=12, duration_s=120)))
    assert batches
    for device, batch in batches:
        parsed = ReadingsBatch.model_validate(batch)
        assert parsed.device_id == device
        assert all(isinstance(r["ts"], int) for r in batch["readings"])


RANGES = {
    "spindle_temp_c": (15, 80),
    "vibration_mm_s": (0, 30),
    "spindle_rpm": (0, 12_500),
    "power_kw": (0, 60),
    "coolant_flow_l_min": (0, 30),
    "motor_current_a": (0, 60),
    "hydraulic_pressure_bar": (140, 165),
    "axis_load_pct": (0, 100),
    "ambient_temp_c": (15, 30),
}


def test_signals_stay_in_plausible_ranges() -> None:
    data = series(timeline(metrics=9))
    assert {m for _, m in data} == set(RANGES)
    for (_, metric), values in data.items():
        lo, hi = RANGES[metric]
        assert lo <= min(values), metric
        assert max(values) <= hi, metric


def test_spindle_cycles_on_and_off_with_zeros_while_off() -> None:
    data = series(timeline(metrics=5))
    for device in (device_id(i) for i in range(4)):
        rpm = data[(device, "spindle_rpm")]
        coolant = data[(device, "coolant_flow_l_min")]
        assert 0.0 in rpm, device
        assert max(rpm) > 0, device
        assert sum(1 for a, b in itertools.pairwise(rpm) if (a == 0) != (b == 0)) >= 2
        for r, c in zip(rpm, coolant, strict=True):
            assert (r == 0) == (c == 0)


def test_power_follows_spindle_speed() -> None:
    data = series(timeline(metrics=4))
    rpm, power = data[("mill-0002", "spindle_rpm")], data[("mill-0002", "power_kw")]
    idle = [p for r, p in zip(rpm, power, strict=True) if r == 0]
    busy = [p for r, p in zip(rpm, power, strict=True) if r > 0]
    assert max(idle) < min(busy)


def test_vibration_has_occasional_spikes() -> None:
    data = series(timeline(devices=8, metrics=2, duration_s=1800))
    values = [v for (_, m), vs in data.items() if m == "vibration_mm_s" for v in vs]
    spikes = [v for v in values if v > 6]
    assert 0 < len(spikes) < len(values) * 0.05


def test_temperature_drifts_slowly() -> None:
    temps = series(timeline(devices=1, metrics=1, duration_s=600))[("press-0001", "spindle_temp_c")]
    steps = [abs(b - a) for a, b in itertools.pairwise(temps)]
    assert max(steps) < 2.0
    assert max(temps) - min(temps) > 1.0


def test_generate_needs_a_fixed_bounded_timeline() -> None:
    with pytest.raises(ConfigError):
        list(generate(SimulatorConfig(count=10)))
    with pytest.raises(ConfigError):
        list(generate(SimulatorConfig(start_ms=START)))


@pytest.mark.parametrize(
    "bad",
    [
        {"devices": 0},
        {"metrics": 0},
        {"rate": -1},
        {"batch": 0},
        {"batch": 10_001},
        {"count": 0},
        {"duration_s": 0},
        {"transport": "carrier-pigeon"},
    ],
)
def test_bad_config_fails_at_start(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SimulatorConfig(**bad)  # type: ignore[arg-type]
