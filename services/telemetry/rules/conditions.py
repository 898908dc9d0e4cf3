"""Conditions of alarm and machine-state rules, evaluated in event time.

A condition tree is made of leaves (one metric each) joined by :class:`All` / :class:`AnyOf`.
Between two readings of a metric its last value holds (sample-and-hold), so every condition
has a single answer to "since when has it held?" (:func:`compile_sat`): a threshold that became
true at ``since`` with a duration ``for`` holds from ``since + for``; an absence holds from
``last reading + timeout``; an AND holds from the latest of its children, an OR from the
earliest. That answer depends only on the readings, never on when the engine asks, which is
what makes alarms identical when a partition is replayed with other poll boundaries.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
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

    def dump(self) -> tuple[Any, ...]:
        if self.samples:
            return (self.since, self.last_ts, self.last_value, list(self.samples))
        return (self.since, self.last_ts, self.last_value)

    @classmethod
    def load(cls, raw: list[Any]) -> LeafState:
        samples = deque((int(t), float(v)) for t, v in raw[3]) if len(raw) > 3 else deque()
        return cls(raw[0], raw[1], raw[2], samples)


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


Sat = Callable[[list[LeafState]], int | None]
Updater = Callable[[LeafState, int, float], None]


def compile_sat(cond: Condition) -> Sat:
    """A function giving the event time from which ``cond`` holds given the readings so far
    (None: it does not hold). Compiled once per rule: this runs for every watched reading."""
    if isinstance(cond, Leaf):
        i, for_ms = cond.index, cond.for_ms
        if cond.kind == "absent":

            def silent(states: list[LeafState]) -> int | None:
                last = states[i].last_ts
                return last + for_ms if last >= 0 else None

            return silent

        def held(states: list[LeafState]) -> int | None:
            since = states[i].since
            return None if since is None else since + for_ms

        return held
    parts = tuple(compile_sat(child) for child in cond.children)
    if isinstance(cond, All):

        def every(states: list[LeafState]) -> int | None:
            latest = -1
            for part in parts:
                at = part(states)
                if at is None:
                    return None
                latest = max(latest, at)
            return latest

        return every

    def first(states: list[LeafState]) -> int | None:
        earliest: int | None = None
        for part in parts:
            at = part(states)
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        return earliest

    return first


def compile_update(leaf: Leaf) -> Updater:
    """:func:`update` specialised for one leaf (the common comparisons without dispatch)."""
    if leaf.kind in RATES or leaf.kind == "absent":
        return partial(update, leaf)
    holds: Callable[[float], bool] = leaf.holds
    if leaf.kind == "above":
        holds = partial(operator.lt, leaf.a)
    elif leaf.kind == "below":
        holds = partial(operator.gt, leaf.a)

    def apply(state: LeafState, ts: int, value: float) -> None:
        if ts < state.last_ts:
            return
        state.last_ts = ts
        state.last_value = value
        if holds(value):
            if state.since is None:
                state.since = ts
        else:
            state.since = None

    return apply


def leaves(cond: Condition) -> list[Leaf]:
    """The leaves of a tree, depth first (the first one is a rule's primary metric)."""
    if isinstance(cond, Leaf):
        return [cond]
    return [leaf for child in cond.children for leaf in leaves(child)]


def compile_updaters(trees: list[Leaf]) -> tuple[Updater, ...]:
    """One updater per leaf, in index order."""
    return tuple(compile_update(leaf) for leaf in sorted(trees, key=lambda leaf: leaf.index))
