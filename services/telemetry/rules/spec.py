"""The declarative form of conditions and device selectors, as written in a rules file.

Validated with pydantic (unknown keys are errors: a typo in a rule must fail at start, not
silently never fire), then compiled into the plain dataclasses of :mod:`.conditions`. Alarm and
machine-state rules (:mod:`.alarm`, :mod:`.state`) are built from these parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.telemetry.rules.conditions import All, AnyOf, Condition, Kind, Leaf
from shared.durations import parse_duration_ms

Duration = Annotated[str, Field(pattern=r"^\s*\d+\s*(ms|s|m|h)\s*$")]
RuleId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][\w.:-]*$")]
_KINDS: tuple[Kind, ...] = (
    "above",
    "below",
    "outside",
    "inside",
    "equals",
    "rate_above",
    "rate_below",
)


class StrictModel(BaseModel):
    """The base of every part of the rules file: unknown keys are refused (a typo must fail at
    start), a validated part is immutable, and an aliased field (``for``, a Python keyword) can
    also be set by its Python name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LeafSpec(StrictModel):
    """``{metric: spindle_temp_c, above: 90, for: 30s}`` and friends; exactly one comparison."""

    metric: Annotated[str, Field(min_length=1, max_length=128)]
    above: float | None = None
    below: float | None = None
    outside: tuple[float, float] | None = None
    inside: tuple[float, float] | None = None
    equals: float | None = None
    rate_above: float | None = None
    rate_below: float | None = None
    absent_for: Duration | None = None
    for_: Duration | None = Field(None, alias="for")
    over: Duration | None = None

    @model_validator(mode="after")
    def _one_comparison(self) -> Self:
        options = (*_KINDS, "absent_for")
        chosen = [k for k in options if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"a condition needs exactly one of {options}")
        rate = chosen[0].startswith("rate_")
        if rate != (self.over is not None):
            raise ValueError("rate_above/rate_below need `over` (and only they take it)")
        for bounds in (self.outside, self.inside):
            if bounds is not None and bounds[0] > bounds[1]:
                raise ValueError("a range is written [low, high]")
        if self.absent_for is not None and self.for_ is not None:
            raise ValueError("absent_for already is a duration; drop `for`")
        return self

    def compile(self, index: int) -> Leaf:
        for_ms = parse_duration_ms(self.for_) if self.for_ else 0
        if self.absent_for is not None:
            return Leaf(index, self.metric, "absent", for_ms=parse_duration_ms(self.absent_for))
        for kind in _KINDS:
            raw: Any = getattr(self, kind)
            if raw is None:
                continue
            a, b = (raw[0], raw[1]) if isinstance(raw, tuple) else (raw, 0.0)
            over = parse_duration_ms(self.over) if self.over else 0
            return Leaf(index, self.metric, kind, float(a), float(b), for_ms, over)
        raise AssertionError("validated above")


class AllSpec(StrictModel):
    all: Annotated[list[ConditionSpec], Field(min_length=1)]


class AnySpec(StrictModel):
    any: Annotated[list[ConditionSpec], Field(min_length=1)]


ConditionSpec = LeafSpec | AllSpec | AnySpec
AllSpec.model_rebuild()
AnySpec.model_rebuild()


class Numbering:
    """Hands out leaf indices across the trees of one rule."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> int:
        self.count += 1
        return self.count - 1


def compile_condition(spec: ConditionSpec, numbering: Numbering) -> Condition:
    if isinstance(spec, LeafSpec):
        return spec.compile(numbering.next())
    if isinstance(spec, AllSpec):
        return All(tuple(compile_condition(c, numbering) for c in spec.all))
    return AnyOf(tuple(compile_condition(c, numbering) for c in spec.any))


@dataclass(frozen=True, slots=True)
class Selector:
    """Which devices a rule applies to: by type (the id's prefix before ``-``) or by id;
    neither means every device."""

    device_types: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()

    def matches(self, device_id: str) -> bool:
        if not self.device_types and not self.devices:
            return True
        return device_id in self.devices or device_id.split("-", 1)[0] in self.device_types

    def __repr__(self) -> str:
        # A rule's fingerprint is a digest of its repr, and a set's order changes with the
        # process's string hashing: sorted, so that a restarted process recognises its rules'
        # snapshots. Empty and one-element sets read as the default repr did.
        return (
            f"Selector(device_types={_sorted(self.device_types)}, devices={_sorted(self.devices)})"
        )


def _sorted(names: frozenset[str]) -> str:
    return f"frozenset({{{', '.join(map(repr, sorted(names)))}}})" if names else "frozenset()"


class SelectorSpec(StrictModel):
    device_types: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)

    def selector(self) -> Selector:
        return Selector(frozenset(self.device_types), frozenset(self.devices))
