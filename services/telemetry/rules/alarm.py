"""Alarm rules: a raise condition, an optional clear condition (hysteresis), a severity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from contracts.telemetry import Severity
from services.telemetry.rules.conditions import (
    Condition,
    Leaf,
    Sat,
    Updater,
    compile_sat,
    compile_updaters,
    leaves,
)
from services.telemetry.rules.spec import (
    ConditionSpec,
    Numbering,
    RuleId,
    Selector,
    SelectorSpec,
    compile_condition,
)


@dataclass(frozen=True, slots=True)
class AlarmRule:
    """Raised when ``when`` holds; cleared when ``clear_when`` holds, or, without one, as soon
    as ``when`` stops holding. ``primary`` names the metric, value and threshold an alarm
    event reports. ``all_leaves`` are the leaves of both conditions, in index order."""

    id: str
    severity: Severity
    when: Condition
    clear_when: Condition | None
    selector: Selector
    primary: Leaf
    leaf_count: int
    description: str | None = None
    when_at: Sat = field(init=False, repr=False, compare=False)
    clear_at: Sat | None = field(init=False, repr=False, compare=False)
    all_leaves: tuple[Leaf, ...] = field(init=False, repr=False, compare=False)
    updaters: tuple[Updater, ...] = field(init=False, repr=False, compare=False)
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        trees = [self.when] if self.clear_when is None else [self.when, self.clear_when]
        object.__setattr__(self, "when_at", compile_sat(self.when))
        clear = compile_sat(self.clear_when) if self.clear_when is not None else None
        object.__setattr__(self, "clear_at", clear)
        found = [leaf for tree in trees for leaf in leaves(tree)]
        object.__setattr__(self, "all_leaves", tuple(found))
        object.__setattr__(self, "updaters", compile_updaters(found))
        # Changes whenever the rule's meaning does; a snapshot of another version is dropped.
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:16]
        object.__setattr__(self, "fingerprint", digest)

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(leaf.metric for leaf in self.all_leaves)


class AlarmRuleSpec(SelectorSpec):
    """One entry under ``alarms:`` in the rules file."""

    id: RuleId
    severity: Severity
    when: ConditionSpec
    clear_when: ConditionSpec | None = None
    metric: str | None = None
    description: Annotated[str, Field(max_length=512)] | None = None

    def compile(self) -> AlarmRule:
        numbering = Numbering()
        when = compile_condition(self.when, numbering)
        clear = compile_condition(self.clear_when, numbering) if self.clear_when else None
        candidates = leaves(when) + (leaves(clear) if clear else [])
        primary = candidates[0]
        if self.metric is not None:
            named = [leaf for leaf in candidates if leaf.metric == self.metric]
            if not named:
                raise ValueError(
                    f"rule {self.id}: metric {self.metric} is in none of its conditions"
                )
            primary = named[0]
        return AlarmRule(
            id=self.id,
            severity=self.severity,
            when=when,
            clear_when=clear,
            selector=self.selector(),
            primary=primary,
            leaf_count=numbering.count,
            description=self.description,
        )
