"""Compatibility rules (docs/architecture.md), exercised on pydantic variants of one contract."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import pytest
from pydantic import Field

from contracts.base import Contract
from contracts.compat import breaking_changes
from contracts.schemagen import schema_for
from contracts.telemetry import ReadingsBatch


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class Narrow(StrEnum):
    RED = "red"


class Wide(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Line(Contract):
    sku: str
    qty: int


class Order(Contract):
    order_id: Annotated[str, Field(max_length=64)]
    lines: list[Line]
    colour: Colour
    note: str | None = None


def schema(model: type[Contract]) -> dict[str, Any]:
    return schema_for("orders.order-placed.v1", model)


def check(new: type[Contract]) -> list[str]:
    return breaking_changes(schema(Order), schema(new))


def test_identical_schema_is_compatible() -> None:
    assert check(Order) == []


def test_new_optional_field_is_accepted() -> None:
    class WithOptional(Order):
        priority: int = 0
        channel: str | None = None

    assert check(WithOptional) == []


def test_new_optional_field_in_nested_object_is_accepted() -> None:
    class LineV2(Line):
        lot: str | None = None

    class OrderV2(Order):
        lines: list[LineV2]  # type: ignore[assignment]

    assert check(OrderV2) == []


def test_removed_field_is_breaking() -> None:
    class NoNote(Contract):
        order_id: Annotated[str, Field(max_length=64)]
        lines: list[Line]
        colour: Colour

    assert check(NoNote) == ["$.note: field removed (a rename is a removal plus an addition)"]


def test_rename_is_a_removal_plus_an_addition() -> None:
    class Renamed(Contract):
        order_ref: Annotated[str, Field(max_length=64)]
        lines: list[Line]
        colour: Colour
        note: str | None = None

    problems = check(Renamed)
    assert "$.order_id: field removed (a rename is a removal plus an addition)" in problems
    assert "$.order_ref: new required field added" in problems


def test_retyped_field_is_breaking() -> None:
    class Retyped(Order):
        order_id: int  # type: ignore[assignment]

    assert check(Retyped) == ["$.order_id: type changed from string to integer"]


def test_retyped_field_in_nested_array_item_reports_its_path() -> None:
    class LineV2(Contract):
        sku: str
        qty: float

    class OrderV2(Order):
        lines: list[LineV2]  # type: ignore[assignment]

    assert check(OrderV2) == ["$.lines[*].qty: type changed from integer to number"]


def test_nullable_made_non_nullable_is_a_type_change() -> None:
    class NotNull(Order):
        note: str = ""

    assert check(NotNull) == ["$.note: type changed from null | string to string"]


def test_new_required_field_is_breaking() -> None:
    class WithRequired(Order):
        customer_id: str

    assert check(WithRequired) == ["$.customer_id: new required field added"]


def test_optional_made_required_is_breaking() -> None:
    class Required(Order):
        note: str | None

    assert check(Required) == ["$.note: optional field made required"]


def test_enum_narrowed_is_breaking() -> None:
    class Narrowed(Order):
        colour: Narrow  # type: ignore[assignment]

    assert check(Narrowed) == ["$.colour: enum narrowed, values removed: ['green']"]


def test_enum_widened_is_accepted() -> None:
    class Widened(Order):
        colour: Wide  # type: ignore[assignment]

    assert check(Widened) == []


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (Field(max_length=32), "$.order_id: constraint maxLength tightened from 64 to 32"),
        (Field(max_length=64, min_length=3), "$.order_id: constraint minLength=3 added"),
        (Field(max_length=64, pattern="^O-"), "$.order_id: pattern changed from unset to '^O-'"),
    ],
)
def test_tightened_constraint_is_breaking(field: Any, expected: str) -> None:
    class Tightened(Order):
        order_id: Annotated[str, field]

    assert check(Tightened) == [expected]


def test_loosened_constraint_is_accepted() -> None:
    class Loosened(Order):
        order_id: Annotated[str, Field(max_length=128)]

    assert check(Loosened) == []


def test_forbidding_unknown_fields_is_breaking() -> None:
    class Strict(Order, extra="forbid"):
        pass

    assert check(Strict) == ["$: additionalProperties set to false (unknown fields now rejected)"]


def test_committed_telemetry_contract_against_itself_and_a_removal() -> None:
    current = schema_for("telemetry.readings.v1", ReadingsBatch)
    assert breaking_changes(current, current) == []
    broken = schema_for("telemetry.readings.v1", ReadingsBatch)
    del broken["$defs"]["Reading"]["properties"]["quality"]
    assert breaking_changes(current, broken) == [
        "$.readings[*].quality: field removed (a rename is a removal plus an addition)"
    ]


def test_recursive_refs_terminate() -> None:
    node = {"$ref": "#/$defs/Node"}
    tree = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": node}},
            }
        },
        **node,
    }
    assert breaking_changes(tree, tree) == []
