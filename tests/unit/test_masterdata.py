"""The sample plant, plant validation, intake checks and deterministic master-data ids."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from contracts.envelope import parse_headers
from contracts.masterdata import Product
from millrace.masterdata.plant import PlantError, load_plant, parse_plant
from millrace.masterdata.publish import records
from services.orders.domain.intake import IntakeError, RequestedLine, resolve_lines

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"


def raw_plant() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(PLANT.read_text())
    return data


def test_sample_plant_is_a_small_discrete_factory() -> None:
    plant = load_plant(PLANT)
    assert len(plant.machines) >= 8
    assert len(plant.products) == 5
    assert len(plant.suppliers) == 3
    assert all(3 <= len(p.routing) <= 6 for p in plant.products)


def test_unknown_capability_is_refused() -> None:
    raw = raw_plant()
    raw["products"][0]["routing"][0]["capability"] = "teleporting"
    with pytest.raises(PlantError, match="no machine offers teleporting"):
        parse_plant(raw)


def test_duplicate_ids_and_bad_records_are_refused() -> None:
    raw = raw_plant()
    raw["machines"].append(raw["machines"][0])
    with pytest.raises(PlantError, match="duplicate machine ids: saw-01"):
        parse_plant(raw)
    raw = raw_plant()
    raw["suppliers"][0]["country"] = "Austria"
    with pytest.raises(PlantError, match=r"suppliers\[0\]"):
        parse_plant(raw)


def test_records_are_keyed_by_id_with_deterministic_ce_ids() -> None:
    plant = load_plant(PLANT)
    first = list(records(plant))
    again = list(records(load_plant(PLANT)))
    assert [parse_headers(h).id for *_, h in first] == [parse_headers(h).id for *_, h in again]
    _topic, key, value, headers = next(r for r in first if r[0] == "masterdata.products.v1")
    assert Product.model_validate(orjson.loads(value)).sku == key
    assert parse_headers(headers).type == "io.millrace.masterdata.products.v1"


def catalogue() -> dict[str, Product]:
    return {p.sku: p for p in load_plant(PLANT).products}


def test_intake_fills_defaults_and_prices() -> None:
    lines, currency = resolve_lines(
        [RequestedLine("frame-road", 2, {"size": "54"})],
        catalogue(),
        date(2030, 1, 1),
        date(2029, 1, 1),
    )
    assert currency == "EUR"
    assert lines[0].options == {"size": "54", "colour": "black"}
    assert lines[0].operations == 5
    assert lines[0].unit_price_minor == 89000


@pytest.mark.parametrize(
    ("line", "due", "reason"),
    [
        (RequestedLine("nope", 1, {}), date(2030, 1, 1), "unknown sku 'nope'"),
        (RequestedLine("frame-road", 1, {}), date(2030, 1, 1), "options.size: required"),
        (RequestedLine("frame-road", 1, {"size": "99"}), date(2030, 1, 1), "'99' is not one of"),
        (RequestedLine("stem-cnc", 1, {"hue": "x"}), date(2030, 1, 1), "has no option 'hue'"),
        (RequestedLine("frame-road", 201, {"size": "54"}), date(2030, 1, 1), "outside [1, 200]"),
        (RequestedLine("stem-cnc", 1, {}), date(2000, 1, 1), "is in the past"),
    ],
)
def test_intake_refuses_with_the_reason(line: RequestedLine, due: date, reason: str) -> None:
    with pytest.raises(IntakeError) as err:
        resolve_lines([line], catalogue(), due, date(2029, 1, 1))
    assert reason in str(err.value)
