"""Machine-state rules: which condition puts a machine in which state.

Two ways to write one, both compiled to an ordered list of ``(state, condition)`` where the
first condition that holds wins and ``otherwise`` applies when none does:

- from rules, e.g. MAINTENANCE when ``maintenance_mode equals 1``, RUNNING when
  ``spindle_rpm above 10``, otherwise IDLE;
- from a state metric the machine reports itself: ``state_metric: {metric: state, codes:
  {0: IDLE, 1: RUNNING, 2: DOWN, 3: MAINTENANCE}}``.

A machine is DOWN when none of the rule's metrics has been read for ``down_after`` (event
time; a quiet partition's event time follows the wall clock).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Self

from pydantic import Field, model_validator

from contracts.telemetry import MachineStateName
from services.telemetry.rules.conditions import (
    ANY_METRIC,
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
    Duration,
    Numbering,
    RuleId,
    Selector,
    SelectorSpec,
    StrictModel,
    compile_condition,
)
from shared.durations import parse_duration_ms


@dataclass(frozen=True, slots=True)
class StateRule:
    """``states`` in order of precedence, ``otherwise`` when none holds, and ``down``: the
    silence after which the machine is DOWN. ``all_leaves`` are the leaves of every condition
    and the silence, in index order."""

    id: str
    states: tuple[tuple[MachineStateName, Condition], ...]
    otherwise: MachineStateName
    down: Leaf | None
    selector: Selector
    leaf_count: int
    state_ats: tuple[tuple[MachineStateName, Sat], ...] = field(
        init=False, repr=False, compare=False
    )
    down_at: Sat | None = field(init=False, repr=False, compare=False)
    all_leaves: tuple[Leaf, ...] = field(init=False, repr=False, compare=False)
    updaters: tuple[Updater, ...] = field(init=False, repr=False, compare=False)
    fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((name, compile_sat(cond)) for name, cond in self.states)
        object.__setattr__(self, "state_ats", compiled)
        down = compile_sat(self.down) if self.down is not None else None
        object.__setattr__(self, "down_at", down)
        found = [leaf for _, cond in self.states for leaf in leaves(cond)]
        found += [self.down] if self.down is not None else []
        object.__setattr__(self, "all_leaves", tuple(found))
        object.__setattr__(self, "updaters", compile_updaters(found))
        # Changes whenever the rule's meaning does; a snapshot of another version is dropped.
        digest = hashlib.sha256(repr(self).encode()).hexdigest()[:16]
        object.__setattr__(self, "fingerprint", digest)

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(leaf.metric for _, cond in self.states for leaf in leaves(cond))


class StateWhen(StrictModel):
    state: MachineStateName
    when: ConditionSpec


class StateMetric(StrictModel):
    metric: Annotated[str, Field(min_length=1, max_length=128)]
    codes: Annotated[dict[int, MachineStateName], Field(min_length=1)]


class StateRuleSpec(SelectorSpec):
    """One entry under ``machine_states:`` in the rules file (first matching entry per machine)."""

    id: RuleId
    states: list[StateWhen] = Field(default_factory=list)
    state_metric: StateMetric | None = None
    otherwise: MachineStateName = MachineStateName.IDLE
    down_after: Duration | None = "60s"

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if bool(self.states) == (self.state_metric is not None):
            raise ValueError("a machine-state rule has either `states` or `state_metric`")
        return self

    def compile(self) -> StateRule:
        numbering = Numbering()
        states: list[tuple[MachineStateName, Condition]] = []
        if self.state_metric is not None:
            metric = self.state_metric.metric
            for code, name in sorted(self.state_metric.codes.items()):
                states.append((name, Leaf(numbering.next(), metric, "equals", float(code))))
        states.extend((e.state, compile_condition(e.when, numbering)) for e in self.states)
        down = None
        if self.down_after is not None:
            down_ms = parse_duration_ms(self.down_after)
            down = Leaf(numbering.next(), ANY_METRIC, "absent", for_ms=down_ms)
        return StateRule(
            id=self.id,
            states=tuple(states),
            otherwise=self.otherwise,
            down=down,
            selector=self.selector(),
            leaf_count=numbering.count,
        )
