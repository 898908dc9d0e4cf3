"""Conditions of alarm and machine-state rules, evaluated in event time.

A condition tree is made of leaves (one metric each) joined by :class:`All` / :class:`AnyOf`.
Between two readings of a metric its last value holds (sample-and-hold), so every condition
has a single answer to "since when has it held?" (:func:`satisfied_at`): a threshold that became
true at ``since`` with a duration ``for`` holds from ``since + for``; an absence holds from
``last reading + timeout``; an AND holds from the latest of its children, an OR from the
earliest. That answer depends only on the readings, never on when the engine asks, which is
what makes alarms identical when a partition is replayed with other poll boundaries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal[
    "above", "below", "outside", "inside", "equals", "rate_above", "rate_below", "absent"
]
PREDICATES: frozenset[str] = frozenset({"above", "below", "outside", "inside", "equals"})
RATES: frozenset[str] = frozenset({"rate_above", "rate_below"})
ANY_METRIC = "*"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One metric compared with a threshold (``a``; ranges use ``[a, b]``).

    ``for_ms`` is how long the comparison must hold (for ``absent``: the silence), ``over_ms``
    the window of a rate of change, in units per second. ``index`` numbers the leaf inside its
    rule, so per-device state is a plain list.
    """

    index: int
    metric: str
    kind: Kind
    a: float = 0.0
    b: float = 0.0
    for_ms: int = 0
    over_ms: int = 0

    def holds(self, value: float) -> bool:
        kind = self.kind
        if kind in {"above", "rate_above"}:
            return value > self.a
        if kind in {"below", "rate_below"}:
            return value < self.a
        if kind == "outside":
            return value < self.a or value > self.b
        if kind == "inside":
            return self.a <= value <= self.b
        return value == self.a

    def threshold(self, value: float) -> float:
        """The limit that ``value`` is judged against (for a range, the nearer bound)."""
        if self.kind == "absent":
            return self.for_ms / 1000
        if self.kind in ("outside", "inside"):
            return self.a if abs(value - self.a) <= abs(value - self.b) else self.b
        return self.a


@dataclass(frozen=True, slots=True)
class All:
    children: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Condition, ...]


Condition = Leaf | All | AnyOf


@dataclass(slots=True)
class LeafState:
    """What one device's readings left in one leaf."""

    since: int | None = None
    last_ts: int = -1
    last_value: float = 0.0
    samples: deque[tuple[int, float]] = field(default_factory=deque)

    def dump(self) -> list[Any]:
        return [self.since, self.last_ts, self.last_value, [list(s) for s in self.samples]]

    @classmethod
    def load(cls, raw: list[Any]) -> LeafState:
        since, last_ts, last_value, samples = raw
        return cls(since, last_ts, last_value, deque((int(t), float(v)) for t, v in samples))


def update(leaf: Leaf, state: LeafState, ts: int, value: float) -> None:
    """Apply one reading of the leaf's metric. Readings older than the last one are ignored,
    so a leaf's history only moves forward."""
    if ts < state.last_ts:
        return
    state.last_ts = ts
    state.last_value = value
    kind = leaf.kind
    if kind == "absent":
        return
    if kind in RATES:
        samples = state.samples
        samples.append((ts, value))
        horizon = ts - leaf.over_ms
        while len(samples) > 1 and samples[0][0] < horizon:
            samples.popleft()
        first_ts, first_value = samples[0]
        if first_ts == ts:
            state.since = None
            return
        value = (value - first_value) * 1000 / (ts - first_ts)
    if leaf.holds(value):
        if state.since is None:
            state.since = ts
    else:
        state.since = None


def satisfied_at(cond: Condition, states: list[LeafState]) -> int | None:
    """The event time from which ``cond`` holds given the readings so far, or None."""
    if isinstance(cond, Leaf):
        state = states[cond.index]
        if cond.kind == "absent":
            return state.last_ts + cond.for_ms if state.last_ts >= 0 else None
        return state.since + cond.for_ms if state.since is not None else None
    results = [satisfied_at(child, states) for child in cond.children]
    if isinstance(cond, All):
        return None if None in results else max(r for r in results if r is not None)
    present = [r for r in results if r is not None]
    return min(present) if present else None


def leaves(cond: Condition) -> list[Leaf]:
    """The leaves of a tree, depth first (the first one is a rule's primary metric)."""
    if isinstance(cond, Leaf):
        return [cond]
    return [leaf for child in cond.children for leaf in leaves(child)]
