"""One alarm rule bound to one device: at most one active alarm, raise and clear in event time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from contracts.telemetry import Severity
from services.telemetry.rules.alarm import AlarmRule
from services.telemetry.rules.conditions import LeafState


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """An alarm raised or cleared; ``raised_at`` identifies the alarm in both events."""

    device_id: str
    rule_id: str
    state: Literal["raised", "cleared"]
    severity: Severity
    metric: str
    value: float
    threshold: float
    ts: int
    raised_at: int
    description: str | None


class AlarmInstance:
    """``raised_at`` is set while the alarm is active. ``cleared_at`` is when it last cleared:
    a new alarm needs its raise condition to have started holding after that, so a rule whose
    clear condition overlaps its raise condition cannot flap."""

    __slots__ = ("cleared_at", "device", "key", "leaves", "raised_at", "rule", "scheduled")

    def __init__(self, device: str, rule: AlarmRule) -> None:
        self.device = device
        self.rule = rule
        self.key = f"alarm:{rule.id}"
        self.leaves = [LeafState() for _ in range(rule.leaf_count)]
        self.raised_at: int | None = None
        self.cleared_at = -1
        self.scheduled: int | None = None

    def evaluate(self, t: int, at: int, out: list[Any]) -> int | None:
        """Apply every transition due by the engine's clock ``t``; return when to look again.

        ``at`` is the time of the reading that triggered this evaluation (``t`` for a
        deadline): a condition that stops holding stops holding then."""
        rule = self.rule
        if self.raised_at is None:
            sat = rule.when_at(self.leaves)
            if sat is None or sat <= self.cleared_at:
                return None
            if sat > t:
                return sat
            self.raised_at = sat
            out.append(self._event("raised", sat, sat))
        raised = self.raised_at
        if rule.clear_at is None:
            sat = rule.when_at(self.leaves)
            if sat is not None and sat <= t:
                return None
            cleared = max(at, raised)
        else:
            sat = rule.clear_at(self.leaves)
            if sat is None or sat > t:
                return sat
            cleared = max(sat, raised)
        self.raised_at = None
        self.cleared_at = cleared
        out.append(self._event("cleared", cleared, raised))
        again = rule.when_at(self.leaves)
        return again if again is not None and again > cleared else None

    def _event(self, state: Literal["raised", "cleared"], ts: int, raised: int) -> AlarmTransition:
        rule = self.rule
        primary = rule.primary
        value = self.leaves[primary.index].last_value
        return AlarmTransition(
            device_id=self.device,
            rule_id=rule.id,
            state=state,
            severity=rule.severity,
            metric=primary.metric,
            value=value,
            threshold=primary.threshold(value),
            ts=ts,
            raised_at=raised,
            description=rule.description,
        )

    def dump(self) -> list[Any]:
        return [self.raised_at, self.cleared_at, self.scheduled]

    def load(self, raw: list[Any]) -> None:
        self.raised_at, self.cleared_at, self.scheduled = raw
