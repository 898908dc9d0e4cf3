"""The telemetry contract is fixed (docs/architecture.md); these pin what it accepts and rejects."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.telemetry import (
    AlarmEvent,
    MachineState,
    MachineStateName,
    Quality,
    ReadingsBatch,
    WindowAggregate,
)

TS = 1_732_262_400_123


def batch(**reading: Any) -> dict[str, Any]:
    return {
        "device_id": "press-07",
        "readings": [{"metric": "spindle_temp_c", "ts": TS, **reading}],
    }


def test_the_design_example_parses_with_default_quality() -> None:
    parsed = ReadingsBatch.model_validate_json(json.dumps(batch(value=71.5)))
    assert parsed.device_id == "press-07"
    assert parsed.readings[0].value == 71.5
    assert parsed.readings[0].ts == TS
    assert parsed.readings[0].quality is Quality.GOOD


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_values_in_json_are_rejected(raw: str) -> None:
    text = (
        f'{{"device_id": "press-07", "readings": [{{"metric": "m", "ts": {TS}, "value": {raw}}}]}}'
    )
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate_json(text)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_python_values_are_rejected(value: float) -> None:
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate(batch(value=value))


@pytest.mark.parametrize("value", [True, "71.5", None])
def test_non_numeric_values_are_rejected(value: Any) -> None:
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate_json(json.dumps(batch(value=value)))


@pytest.mark.parametrize("ts", [float(TS), "1732262400123", -1, True])
def test_ts_must_be_a_non_negative_integer(ts: Any) -> None:
    data = batch(value=1)
    data["readings"][0]["ts"] = ts
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate_json(json.dumps(data))


def test_integer_values_are_kept() -> None:
    parsed = ReadingsBatch.model_validate_json(json.dumps(batch(value=42)))
    assert parsed.readings[0].value == 42


def test_quality_values() -> None:
    parsed = ReadingsBatch.model_validate_json(json.dumps(batch(value=1, quality="uncertain")))
    assert parsed.readings[0].quality is Quality.UNCERTAIN
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate_json(json.dumps(batch(value=1, quality="excellent")))


def test_unknown_fields_are_ignored() -> None:
    data = batch(value=1, unit="degC")
    data["firmware"] = "1.2.3"
    parsed = ReadingsBatch.model_validate_json(json.dumps(data))
    assert "firmware" not in parsed.model_dump()
    assert "unit" not in parsed.readings[0].model_dump()


def test_empty_readings_are_rejected() -> None:
    with pytest.raises(ValidationError):
        ReadingsBatch.model_validate({"device_id": "press-07", "readings": []})


def test_bad_device_id_is_rejected() -> None:
    for device_id in ["", " press", "x" * 129]:
        with pytest.raises(ValidationError):
            ReadingsBatch.model_validate({**batch(value=1), "device_id": device_id})


def test_aggregate_alarm_and_state_round_trip() -> None:
    window = WindowAggregate(
        device_id="press-07",
        metric="spindle_temp_c",
        window_start=1_732_262_400_000,
        window_end=1_732_262_460_000,
        count=3,
        min=70.0,
        max=72.0,
        mean=71.0,
        stddev=0.8,
        last=72.0,
    )
    assert WindowAggregate.model_validate_json(window.model_dump_json()) == window
    alarm = AlarmEvent.model_validate(
        {
            "device_id": "press-07",
            "rule": "spindle-overheat",
            "state": "raised",
            "severity": "major",
            "metric": "spindle_temp_c",
            "value": 95.0,
            "threshold": 90.0,
            "ts": TS,
        }
    )
    assert AlarmEvent.model_validate_json(alarm.model_dump_json()) == alarm
    state = MachineState.model_validate({"machine_id": "press-07", "state": "DOWN", "since": TS})
    assert state.state is MachineStateName.DOWN
    assert state.previous is None
    with pytest.raises(ValidationError):
        MachineState.model_validate({"machine_id": "press-07", "state": "BROKEN", "since": TS})
