"""Alarm rules evaluated in event time: every condition type, durations, hysteresis, AND/OR,
one active alarm per (device, rule)."""

from __future__ import annotations

from typing import Any

import pytest

from services.telemetry.alarms.instance import AlarmTransition
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.rules.book import parse_rules


def engine(*alarms: dict[str, Any], lateness_ms: int = 0) -> PartitionEngine:
    return PartitionEngine(parse_rules({"alarms": list(alarms)}), lateness_ms)


def rule(when: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": extra.pop("id", "r"), "severity": "major", "when": when, **extra}


class Feed:
    """Readings of one device, one offset each; each call returns the alarm events it caused
    (of any device: a reading moves the partition's clock for all of them)."""

    def __init__(self, eng: PartitionEngine, device: str = "press-1") -> None:
        self.eng, self.device, self.offset = eng, device, 0

    def __call__(self, metric: str, ts_s: float, value: float) -> list[tuple[str, int]]:
        self.eng.observe(self.device, metric, int(ts_s * 1000), value, self.offset)
        self.offset += 1
        return self.drain()

    def series(self, metric: str, values: dict[float, float]) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for ts, value in sorted(values.items()):
            out += self(metric, ts, value)
        return out

    def drain(self) -> list[tuple[str, int]]:
        return [(e.state, e.ts) for e in self.eng.drain() if isinstance(e, AlarmTransition)]


def test_threshold_without_duration_raises_on_the_reading_and_clears_when_it_stops() -> None:
    feed = Feed(engine(rule({"metric": "t", "above": 90})))
    assert feed("t", 1, 80) == []
    assert feed("t", 2, 91) == [("raised", 2000)]
    assert feed("t", 3, 95) == []
    assert feed("t", 4, 90) == [("cleared", 4000)]


def test_duration_counts_from_the_first_reading_over_and_resets_below() -> None:
    feed = Feed(engine(rule({"metric": "t", "above": 90, "for": "30s"})))
    assert feed.series("t", {0: 95, 10: 95, 20: 80, 25: 95, 50: 95}) == []
    assert feed("t", 56, 96) == [("raised", 55_000)]


def test_duration_elapses_between_readings_by_another_devices_clock() -> None:
    eng = engine(rule({"metric": "t", "above": 90, "for": "30s"}))
    hot, other = Feed(eng, "press-1"), Feed(eng, "press-2")
    hot("t", 0, 95)
    assert other("t", 29, 20) == []
    assert other("t", 31, 20) == [("raised", 30_000)]


def test_event_reports_rule_severity_metric_value_and_threshold() -> None:
    eng = engine(rule({"metric": "t", "above": 90}, severity="critical", description="hot"))
    eng.observe("mill-3", "t", 5_000, 97.5, 0)
    [event] = eng.drain()
    assert isinstance(event, AlarmTransition)
    assert (event.device_id, event.rule_id, event.severity.value) == ("mill-3", "r", "critical")
    assert (event.metric, event.value, event.threshold) == ("t", 97.5, 90.0)
    assert (event.raised_at, event.description) == (5_000, "hot")


def test_hysteresis_clear_condition_and_duration_distinct_from_raise() -> None:
    feed = Feed(
        engine(
            rule(
                {"metric": "t", "above": 90},
                clear_when={"metric": "t", "below": 85, "for": "10s"},
            )
        )
    )
    assert feed("t", 0, 91) == [("raised", 0)]
    assert feed.series("t", {1: 88, 2: 84, 5: 86, 6: 80, 15: 80}) == []
    assert feed("t", 16, 80) == [("cleared", 16_000)]
    assert feed("t", 17, 89) == []
    assert feed("t", 18, 91) == [("raised", 18_000)]


def test_one_active_alarm_per_device_and_rule() -> None:
    eng = engine(rule({"metric": "t", "above": 90}), rule({"metric": "t", "above": 95}, id="r2"))
    a, b = Feed(eng, "press-1"), Feed(eng, "press-2")
    assert a.series("t", {0: 99, 1: 99, 2: 99}) == [("raised", 0), ("raised", 0)]
    assert b("t", 3, 96) == [("raised", 3000), ("raised", 3000)]
    assert eng.active == 4
    assert a("t", 4, 92) == [("cleared", 4000)]
    assert eng.active == 3


def test_overlapping_raise_and_clear_conditions_do_not_flap() -> None:
    feed = Feed(engine(rule({"metric": "t", "above": 90}, clear_when={"metric": "t", "below": 95})))
    assert feed("t", 0, 92) == [("raised", 0), ("cleared", 0)]
    assert feed.series("t", {1: 92, 2: 93}) == []
    assert feed.series("t", {3: 80, 4: 92}) == [("raised", 4000), ("cleared", 4000)]


@pytest.mark.parametrize(
    ("cond", "values", "expected"),
    [
        ({"outside": [10, 20]}, {0: 15, 1: 9, 2: 12, 3: 21}, ["raised", "cleared", "raised"]),
        ({"inside": [10, 20]}, {0: 5, 1: 10, 2: 20.5}, ["raised", "cleared"]),
        ({"below": 3}, {0: 5, 1: 2, 2: 3}, ["raised", "cleared"]),
        ({"equals": 2}, {0: 1, 1: 2, 2: 2, 3: 3}, ["raised", "cleared"]),
    ],
)
def test_comparisons(cond: dict[str, Any], values: dict[float, float], expected: list[str]) -> None:
    feed = Feed(engine(rule({"metric": "m", **cond})))
    assert [state for state, _ in feed.series("m", values)] == expected


def test_range_threshold_is_the_nearer_bound() -> None:
    eng = engine(rule({"metric": "m", "outside": [10, 20]}))
    eng.observe("d", "m", 0, 25.0, 0)
    [event] = eng.drain()
    assert isinstance(event, AlarmTransition)
    assert event.threshold == 20.0


def test_rate_of_change_per_second_over_a_window() -> None:
    feed = Feed(engine(rule({"metric": "t", "rate_above": 0.5, "over": "10s"})))
    assert feed.series("t", {0: 20, 5: 21, 10: 22}) == []
    assert feed("t", 15, 27) == [("raised", 15_000)]
    assert feed("t", 25, 27.5) == [("cleared", 25_000)]


def test_falling_rate() -> None:
    feed = Feed(engine(rule({"metric": "p", "rate_below": -1, "over": "5s"})))
    assert feed.series("p", {0: 150, 2: 149}) == []
    assert feed("p", 4, 140) == [("raised", 4000)]


def test_absence_fires_from_the_clock_and_clears_on_the_next_reading() -> None:
    eng = engine(rule({"metric": "t", "absent_for": "60s"}))
    quiet, busy = Feed(eng, "press-1"), Feed(eng, "press-2")
    quiet("t", 0, 20)
    assert busy("t", 59, 20) == []
    assert busy("t", 61, 20) == [("raised", 60_000)]
    assert quiet("t", 70, 20) == [("cleared", 70_000)]


def test_absence_of_a_metric_never_sent_counts_from_the_first_reading_of_the_device() -> None:
    feed = Feed(engine(rule({"metric": "v", "absent_for": "10s"})))
    feed("other", 0, 1)
    assert feed("x", 5, 1) == []


def test_absence_on_a_quiet_partition_fires_by_watermark_minus_lateness() -> None:
    eng = engine(rule({"metric": "t", "absent_for": "60s"}), lateness_ms=5_000)
    feed = Feed(eng)
    feed("t", 0, 20)
    eng.advance(64_000)
    assert feed.drain() == []
    eng.advance(65_000)
    assert feed.drain() == [("raised", 60_000)]


def test_and_holds_from_the_latest_child_or_from_the_earliest() -> None:
    both = {"all": [{"metric": "t", "above": 90, "for": "10s"}, {"metric": "rpm", "above": 0}]}
    feed = Feed(engine(rule(both)))
    feed("t", 0, 95)
    assert feed("t", 11, 95) == []
    assert feed("rpm", 12, 100) == [("raised", 12_000)]
    assert feed("rpm", 13, 0) == [("cleared", 13_000)]

    either = {"any": [{"metric": "t", "above": 90, "for": "10s"}, {"metric": "v", "above": 6}]}
    feed = Feed(engine(rule(either)))
    assert feed("v", 0, 7) == [("raised", 0)]
    assert feed("t", 1, 95) == []
    assert feed("v", 2, 1) == [("cleared", 2000)]
    assert feed("t", 12, 95) == [("raised", 11_000)]
    assert feed("v", 13, 8) == []
    assert feed("t", 14, 80) == []
    assert feed("v", 15, 1) == [("cleared", 15_000)]


def test_selectors_by_device_type_and_id() -> None:
    eng = engine(
        rule({"metric": "t", "above": 0}, id="presses", device_types=["press"]),
        rule({"metric": "t", "above": 0}, id="one", devices=["mill-7"]),
    )
    for offset, device in enumerate(("press-1", "mill-7", "mill-8")):
        eng.observe(device, "t", 0, 1.0, offset)
    raised = {(e.device_id, e.rule_id) for e in eng.drain() if isinstance(e, AlarmTransition)}
    assert raised == {("press-1", "presses"), ("mill-7", "one")}


def test_out_of_order_reading_of_a_metric_is_ignored() -> None:
    feed = Feed(engine(rule({"metric": "t", "above": 90})))
    assert feed("t", 10, 95) == [("raised", 10_000)]
    assert feed("t", 5, 20) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"alarms": [rule({"metric": "t"})]},
        {"alarms": [rule({"metric": "t", "above": 1, "below": 0})]},
        {"alarms": [rule({"metric": "t", "rate_above": 1})]},
        {"alarms": [rule({"metric": "t", "above": 1, "over": "1s"})]},
        {"alarms": [rule({"metric": "t", "outside": [5, 1]})]},
        {"alarms": [rule({"metric": "t", "above": 1, "for": "ten"})]},
        {"alarms": [rule({"metric": "t", "above": 1, "typo": 1})]},
        {"alarms": [rule({"metric": "t", "above": 1}, severity="urgent")]},
        {"alarms": [rule({"metric": "t", "above": 1}), rule({"metric": "t", "below": 1})]},
        {"alarms": [rule({"metric": "t", "above": 1}, metric="other")]},
        {"alarms": [rule({"all": []})]},
        {"alarmz": []},
    ],
)
def test_invalid_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_rules(bad)
