"""``contracts.types``: the id and time types every contract shares."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts import masterdata, orders, production, scheduling, telemetry
from contracts.types import EntityId, EpochMillis

ids: TypeAdapter[str] = TypeAdapter(EntityId)
times: TypeAdapter[int] = TypeAdapter(EpochMillis)


@pytest.mark.parametrize("value", ["press-07", "a", "line:2/cell.3_x", "O-1/2", "9" * 128])
def test_ids_accepted(value: str) -> None:
    assert ids.validate_python(value) == value


@pytest.mark.parametrize("value", ["", "-press", "press 07", "press\n", "presse\u0301", "x" * 129])
def test_ids_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        ids.validate_python(value)


@pytest.mark.parametrize("value", [0, 1_732_262_400_123, 253_402_300_799_999])
def test_times_accepted(value: int) -> None:
    assert times.validate_python(value) == value


@pytest.mark.parametrize("value", [-1, 253_402_300_800_000, 1.0, "1732262400123", True])
def test_times_refused(value: Any) -> None:
    with pytest.raises(ValidationError):
        times.validate_python(value)


def test_every_contract_module_shares_the_same_types() -> None:
    # contracts.telemetry re-exports them for modules that imported them from there.
    for module in (telemetry, masterdata, orders, production, scheduling):
        assert module.EntityId is EntityId
    for module in (telemetry, production, scheduling):
        assert module.EpochMillis is EpochMillis
