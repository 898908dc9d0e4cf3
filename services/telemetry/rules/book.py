"""The rule book of the telemetry service: alarm rules and machine-state rules.

Loaded from the YAML file named by ``MILLRACE_TELEMETRY_ALARM_RULES`` (see
``deploy/local/alarm-rules.yaml``); an invalid file stops the service at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, model_validator

from services.telemetry.rules.alarm import AlarmRule, AlarmRuleSpec
from services.telemetry.rules.spec import StrictModel
from services.telemetry.rules.state import StateRule, StateRuleSpec


@dataclass(frozen=True)
class RuleBook:
    """Every rule of the file, compiled; ``metrics`` are the metrics any of them reads, so the
    aggregator hands the engine only the readings a rule can use."""

    alarms: tuple[AlarmRule, ...] = ()
    states: tuple[StateRule, ...] = ()
    metrics: frozenset[str] = field(default=frozenset())

    @classmethod
    def of(cls, alarms: tuple[AlarmRule, ...], states: tuple[StateRule, ...]) -> RuleBook:
        metrics = frozenset().union(*(r.metrics for r in alarms), *(r.metrics for r in states))
        return cls(alarms, states, metrics)

    @property
    def empty(self) -> bool:
        return not self.alarms and not self.states


class RulesFile(StrictModel):
    """The file as written: ``alarms:`` and ``machine_states:``, rule ids unique per kind."""

    alarms: list[AlarmRuleSpec] = Field(default_factory=list)
    machine_states: list[StateRuleSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        for kind, ids in (
            ("alarm", [r.id for r in self.alarms]),
            ("machine-state", [r.id for r in self.machine_states]),
        ):
            if len(ids) != len(set(ids)):
                raise ValueError(f"duplicate {kind} rule ids: {sorted(ids)}")
        return self


def parse_rules(data: Any) -> RuleBook:
    """A rule book from already-parsed YAML/JSON; raises ``ValueError`` on any mistake."""
    spec = RulesFile.model_validate(data or {})
    return RuleBook.of(
        tuple(r.compile() for r in spec.alarms), tuple(r.compile() for r in spec.machine_states)
    )


def load_rules(path: str | Path) -> RuleBook:
    """The rule book of a YAML file; raises ``OSError`` or ``ValueError``."""
    return parse_rules(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
