"""Replay determinism of the alarm and machine-state engine.

The aggregator commits an offset far behind the newest reading, snapshots the engine at the
newest offset, and after a crash replays from the committed offset with other poll boundaries.
Whatever the crash point, snapshot point and poll boundaries, the events after the restore,
together with those published before the snapshot, are exactly the events of a run without a
crash; and anything published between the snapshot and the crash is republished identically.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.alarms.emit import encode_alarm
from services.telemetry.alarms.instance import AlarmTransition
from services.telemetry.engine.partition import Event, PartitionEngine
from services.telemetry.rules.book import RuleBook, parse_rules
from services.telemetry.states.emit import encode_state

LATENESS = 2_000
BOOK = parse_rules(
    {
        "alarms": [
            {
                "id": "hot",
                "severity": "major",
                "when": {"metric": "t", "above": 70, "for": "3s"},
                "clear_when": {"metric": "t", "below": 60, "for": "2s"},
            },
            {
                "id": "band",
                "severity": "minor",
                "device_types": ["press"],
                "when": {"metric": "p", "outside": [20, 80]},
            },
            {
                "id": "rising",
                "severity": "warning",
                "when": {"metric": "t", "rate_above": 5, "over": "4s"},
            },
            {
                "id": "silent",
                "severity": "critical",
                "when": {
                    "any": [
                        {"metric": "t", "absent_for": "5s"},
                        {"all": [{"metric": "p", "above": 90}, {"metric": "t", "below": 10}]},
                    ]
                },
            },
        ],
        "machine_states": [
            {
                "id": "rpm",
                "down_after": "6s",
                "states": [
                    {"state": "MAINTENANCE", "when": {"metric": "p", "equals": 0}},
                    {"state": "RUNNING", "when": {"metric": "rpm", "above": 10, "for": "1s"}},
                ],
            }
        ],
    }
)

Reading = tuple[str, str, int, float]


@st.composite
def workloads(draw: st.DrawFn) -> list[Reading]:
    """Readings of a few devices, mostly in time order, some up to half the lateness late."""
    n = draw(st.integers(5, 120))
    clock, out = 0, []
    for _ in range(n):
        clock += draw(st.integers(0, 2_500))
        ts = max(0, clock - draw(st.sampled_from([0, 0, 0, 700])))
        device = draw(st.sampled_from(["press-1", "press-2", "mill-1"]))
        metric = draw(st.sampled_from(["t", "t", "p", "rpm", "other"]))
        value = float(draw(st.sampled_from([0, 5, 15, 50, 65, 75, 95, 100])))
        out.append((device, metric, ts, value))
    return out


def run(
    engine: PartitionEngine, readings: list[Reading], start: int, stop: int, cuts: set[int]
) -> list[Event]:
    """Feed offsets [start, stop) the way the aggregator does, advancing at poll ``cuts``."""
    events: list[Event] = []
    watermark = -1
    for offset in range(start, stop):
        device, metric, ts, value = readings[offset]
        watermark = max(watermark, ts)
        if metric in BOOK.metrics:
            engine.observe(device, metric, ts, value, offset)
        if offset in cuts:
            engine.advance(watermark)
            events += engine.drain()
    engine.advance(watermark)
    return events + engine.drain()


def identity(event: Event) -> str:
    record = encode_alarm(event) if isinstance(event, AlarmTransition) else encode_state(event)
    return dict(record[3])["ce_id"].decode()


def roundtrip(snapshot: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(snapshot))
    return parsed


@settings(max_examples=300, deadline=None)
@given(
    readings=workloads(),
    data=st.data(),
)
def test_restore_from_any_snapshot_republishes_the_same_events(
    readings: list[Reading], data: st.DataObject
) -> None:
    n = len(readings)
    reference = run(PartitionEngine(BOOK, LATENESS), readings, 0, n, set())
    assert len({identity(e) for e in reference}) == len(reference)

    snap_at = data.draw(st.integers(0, n), label="snapshot offset")
    crash_at = data.draw(st.integers(snap_at, n), label="crash offset")
    commit_at = data.draw(st.integers(0, snap_at), label="committed offset")
    cuts = set(data.draw(st.lists(st.integers(0, n), max_size=10), label="poll cuts"))

    first = PartitionEngine(BOOK, LATENESS)
    before = run(first, readings, 0, snap_at, cuts)
    snapshot = roundtrip(first.snapshot(snap_at))
    published_after_snapshot = run(first, readings, snap_at, crash_at, cuts)

    second = PartitionEngine(BOOK, LATENESS)
    second.restore(snapshot)
    replayed = run(second, readings, commit_at, n, {c + 1 for c in cuts})

    assert before + replayed == reference
    assert set(published_after_snapshot) <= set(reference)


def test_snapshot_of_a_changed_rule_is_dropped_not_misapplied() -> None:
    engine = PartitionEngine(BOOK, LATENESS)
    engine.observe("press-1", "p", 0, 95.0, 0)
    assert engine.active == 0
    engine.drain()
    assert engine.active == 1
    changed = parse_rules(
        {"alarms": [{"id": "band", "severity": "minor", "when": {"metric": "p", "above": 99}}]}
    )
    restored = PartitionEngine(changed, LATENESS)
    restored.restore(roundtrip(engine.snapshot(1)))
    assert restored.active == 0
    kept = PartitionEngine(BOOK, LATENESS)
    kept.restore(roundtrip(engine.snapshot(1)))
    assert kept.active == 1
    kept.observe("press-1", "p", 0, 95.0, 0)
    assert kept.drain() == []


def test_empty_rule_book_observes_nothing() -> None:
    assert RuleBook().metrics == frozenset()
    assert PartitionEngine(RuleBook()).snapshot(0)["instances"] == []
