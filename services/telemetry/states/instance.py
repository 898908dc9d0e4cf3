"""One machine-state rule bound to one machine: its current state and since when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.telemetry import MachineStateName
from services.telemetry.rules.conditions import LeafState
from services.telemetry.rules.state import StateRule


@dataclass(frozen=True, slots=True)
class StateChange:
    machine_id: str
    state: MachineStateName
    since: int
    previous: MachineStateName | None


class StateInstance:
    """The first state of the rule whose condition holds wins; DOWN wins over all of them once
    the machine has been silent for ``down_after``. ``since`` is the event time of the reading
    (or of the timeout) that changed the state, and never moves back."""

    __slots__ = ("device", "key", "leaves", "rule", "scheduled", "since", "state")

    def __init__(self, device: str, rule: StateRule) -> None:
        self.device = device
        self.rule = rule
        self.key = f"state:{rule.id}"
        self.leaves = [LeafState() for _ in range(rule.leaf_count)]
        self.state: MachineStateName | None = None
        self.since = -1
        self.scheduled: int | None = None

    def evaluate(self, t: int, at: int, out: list[Any]) -> int | None:
        """Apply the state due by the engine's clock ``t``; return when to look again.

        ``at`` is the time of the reading that triggered this evaluation (``t`` for a
        deadline), and dates a change that reading caused."""
        rule = self.rule
        upcoming: list[int] = []
        new, since = rule.otherwise, at
        down_at = rule.down_at(self.leaves) if rule.down_at is not None else None
        if down_at is not None and down_at <= t:
            new, since = MachineStateName.DOWN, down_at
        else:
            if down_at is not None:
                upcoming.append(down_at)
            for name, held_at in rule.state_ats:
                sat = held_at(self.leaves)
                if sat is None:
                    continue
                if sat <= t:
                    new = name
                    break
                upcoming.append(sat)
        if new != self.state:
            since = max(since, self.since)
            out.append(StateChange(self.device, new, since, self.state))
            self.state, self.since = new, since
        return min(upcoming) if upcoming else None

    def dump(self) -> list[Any]:
        return [self.state, self.since, self.scheduled]

    def load(self, raw: list[Any]) -> None:
        state, self.since, self.scheduled = raw
        self.state = MachineStateName(state) if state is not None else None
