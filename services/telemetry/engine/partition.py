"""The alarm and machine-state engine of one Kafka partition.

Pure and synchronous: the aggregator feeds it the partition's good readings in offset order
(:meth:`PartitionEngine.observe`) and, once per poll, the partition's watermark
(:meth:`PartitionEngine.advance`); it collects :class:`AlarmTransition` and
:class:`StateChange` events in ``events`` for the caller to publish.

Time is event time only. Deadlines (a duration elapsing, a silence timing out) sit in a heap
keyed by ``(deadline, device, rule)`` and fire when the engine's clock passes them. The clock
advances with the greatest reading time the engine has seen, so the outcome is a function of
the sequence of readings, not of poll boundaries; the per-poll watermark only moves it in a
partition that has gone quiet (minus the allowed lateness, so that device readings within the
lateness are never overtaken by a watermark-driven deadline).

Recovery: :meth:`snapshot` captures the whole state together with ``next_offset``, the offset
up to which readings are in it; :meth:`restore` brings it back and makes ``observe`` ignore
readings below that offset when the aggregator replays them. See docs/decisions/0005.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections.abc import Iterator
from typing import Any

from services.telemetry.alarms.instance import AlarmInstance, AlarmTransition
from services.telemetry.rules.book import RuleBook
from services.telemetry.rules.conditions import ANY_METRIC, Leaf, LeafState, Updater
from services.telemetry.states.instance import StateChange, StateInstance

Instance = AlarmInstance | StateInstance
Event = AlarmTransition | StateChange
Targets = dict[str, list[tuple[Instance, tuple[tuple[int, Updater], ...]]]]
SNAPSHOT_VERSION = 1


class PartitionEngine:
    """Alarms and machine states of the devices of one partition."""

    def __init__(self, book: RuleBook, lateness_ms: int = 0) -> None:
        self.book = book
        self.lateness_ms = lateness_ms
        self.instances: dict[tuple[str, str], Instance] = {}
        self.targets: dict[str, Targets] = {}
        self.heap: list[tuple[int, str, str]] = []
        self.clock = -1
        self.skip_below = -1
        self.events: list[Event] = []
        # (device, rule key, deadline, exception) of deadlines whose evaluation raised.
        self.failures: list[tuple[str, str, int, Exception]] = []
        self.active = 0

    def observe(self, device: str, metric: str, ts: int, value: float, offset: int) -> None:
        """Apply one good reading (the caller filters on ``book.metrics``)."""
        if offset < self.skip_below:
            return
        targets = self.targets.get(device)
        fresh: list[Instance] = []
        if targets is None:
            targets, fresh = self._bind(device, ts)
        if ts > self.clock:
            self.clock = ts
            heap = self.heap
            if heap and heap[0][0] <= ts:
                self._fire(ts)
        now = self.clock
        hit = targets.get(metric, ())
        for inst, updates in hit:
            states = inst.leaves
            for index, apply in updates:
                apply(states[index], ts, value)
            self._evaluate(inst, now, ts)
        if fresh:
            # Schedules a new device's silences; a machine's first state waits for its metrics.
            seen = {id(inst) for inst, _ in hit}
            for inst in fresh:
                if isinstance(inst, AlarmInstance) and id(inst) not in seen:
                    self._evaluate(inst, now, ts)

    def advance(self, watermark: int) -> None:
        """Let the deadlines of a quiet partition fire (``watermark`` minus lateness)."""
        t = watermark - self.lateness_ms
        if t > self.clock:
            self.clock = t
            self._fire(t)

    def drain(self) -> list[Event]:
        """The events produced since the last drain, in the order they happened."""
        events, self.events = self.events, []
        for e in events:
            if isinstance(e, AlarmTransition):
                self.active += 1 if e.state == "raised" else -1
        return events

    def _bind(self, device: str, ts: int) -> tuple[Targets, list[Instance]]:
        bound: list[Instance] = [
            AlarmInstance(device, rule)
            for rule in self.book.alarms
            if rule.selector.matches(device)
        ]
        state_rule = next((r for r in self.book.states if r.selector.matches(device)), None)
        if state_rule is not None:
            bound.append(StateInstance(device, state_rule))
        targets: Targets = {}
        for inst in bound:
            self.instances[(device, inst.key)] = inst
            _index(inst, targets)
            for leaf in inst.rule.all_leaves:
                if leaf.kind == "absent":
                    # A silence is counted from the first time the device was heard of.
                    inst.leaves[leaf.index].last_ts = ts
        self.targets[device] = targets
        return targets, bound

    def _evaluate(self, inst: Instance, now: int, at: int) -> None:
        deadline = inst.evaluate(now, at, self.events)
        if deadline is not None and (inst.scheduled is None or deadline < inst.scheduled):
            inst.scheduled = deadline
            heapq.heappush(self.heap, (deadline, inst.device, inst.key))

    def _fire(self, now: int) -> None:
        heap = self.heap
        while heap and heap[0][0] <= now:
            deadline, device, key = heapq.heappop(heap)
            inst = self.instances.get((device, key))
            if inst is None or inst.scheduled != deadline:
                continue
            inst.scheduled = None
            try:
                self._evaluate(inst, deadline, deadline)
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 (reported to the caller in ``failures``)
                # No reading to dead-letter: the same evaluation would raise at every poll and
                # on every replay, so the deadline is dropped and the others still fire.
                self.failures.append((device, key, deadline, exc))

    def snapshot(self, next_offset: int) -> dict[str, Any]:
        """Everything needed to continue after ``next_offset`` as if nothing had happened."""
        with _no_gc():
            return self._snapshot(next_offset)

    def _snapshot(self, next_offset: int) -> dict[str, Any]:
        return {
            "v": SNAPSHOT_VERSION,
            "next_offset": next_offset,
            "clock": self.clock,
            "instances": [
                [device, key, inst.rule.fingerprint, inst.dump(), [s.dump() for s in inst.leaves]]
                for (device, key), inst in self.instances.items()
            ],
            "devices": sorted(self.targets),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue from a snapshot. State of a rule that changed or disappeared is dropped."""
        if snap.get("v") != SNAPSHOT_VERSION:
            return
        with _no_gc():
            self._restore(snap)

    def _restore(self, snap: dict[str, Any]) -> None:
        self.clock = int(snap["clock"])
        self.skip_below = int(snap["next_offset"])
        saved = {(d, k): (fp, inst, ls) for d, k, fp, inst, ls in snap["instances"]}
        for device in snap["devices"]:
            _, bound = self._bind(device, -1)
            for inst in bound:
                entry = saved.get((device, inst.key))
                if entry is None or entry[0] != inst.rule.fingerprint:
                    inst.leaves = [LeafState() for _ in inst.leaves]
                    continue
                inst.load(entry[1])
                inst.leaves = [LeafState.load(raw) for raw in entry[2]]
                if inst.scheduled is not None:
                    heapq.heappush(self.heap, (inst.scheduled, device, inst.key))
                if isinstance(inst, AlarmInstance) and inst.raised_at is not None:
                    self.active += 1


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """A snapshot allocates one container per piece of state, all of which survive until it is
    written; with collection on, that triggers full collections of the whole heap (10x the
    cost of the snapshot itself). The allocation is bounded, so collection can wait."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _index(inst: Instance, targets: Targets) -> None:
    by_metric: dict[str, list[Leaf]] = {}
    for leaf in inst.rule.all_leaves:
        by_metric.setdefault(leaf.metric, []).append(leaf)
    wildcard = by_metric.pop(ANY_METRIC, [])
    updaters = inst.rule.updaters
    for metric, found in by_metric.items():
        pairs = tuple((leaf.index, updaters[leaf.index]) for leaf in found + wildcard)
        targets.setdefault(metric, []).append((inst, pairs))
