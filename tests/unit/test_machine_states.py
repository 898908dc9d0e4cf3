"""Machine states derived from rules or from a state metric, published on change with since."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.telemetry import MachineStateName as S
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.rules.book import parse_rules
from services.telemetry.states.emit import encode_state
from services.telemetry.states.instance import StateChange

RPM_RULE: dict[str, Any] = {
    "id": "rpm",
    "down_after": "60s",
    "states": [
        {"state": "MAINTENANCE", "when": {"metric": "maint", "equals": 1}},
        {"state": "RUNNING", "when": {"metric": "rpm", "above": 10}},
    ],
}


class Machine:
    def __init__(self, *rules: dict[str, Any], machine: str = "press-1") -> None:
        self.eng = PartitionEngine(parse_rules({"machine_states": list(rules)}))
        self.machine, self.offset = machine, 0

    def __call__(self, metric: str, ts_s: float, value: float) -> list[tuple[S, int, S | None]]:
        self.eng.observe(self.machine, metric, int(ts_s * 1000), value, self.offset)
        self.offset += 1
        return [
            (e.state, e.since, e.previous) for e in self.eng.drain() if isinstance(e, StateChange)
        ]


def test_rules_give_running_idle_and_maintenance_on_change_only() -> None:
    m = Machine(RPM_RULE)
    assert m("rpm", 0, 1200) == [(S.RUNNING, 0, None)]
    assert m("rpm", 1, 1180) == []
    assert m("rpm", 5, 0) == [(S.IDLE, 5000, S.RUNNING)]
    assert m("maint", 6, 1) == [(S.MAINTENANCE, 6000, S.IDLE)]
    assert m("rpm", 7, 900) == []
    assert m("maint", 8, 0) == [(S.RUNNING, 8000, S.MAINTENANCE)]


def test_down_after_silence_then_back_on_the_next_reading() -> None:
    m = Machine(RPM_RULE)
    m("rpm", 0, 500)
    m.eng.advance(59_999)
    assert m.eng.drain() == []
    m.eng.advance(60_000)
    [down] = m.eng.drain()
    assert isinstance(down, StateChange)
    assert (down.state, down.since, down.previous) == (S.DOWN, 60_000, S.RUNNING)
    assert m("rpm", 75, 0) == [(S.IDLE, 75_000, S.DOWN)]


def test_any_metric_of_the_rule_keeps_a_machine_up() -> None:
    m = Machine(RPM_RULE)
    m("rpm", 0, 500)
    for t in range(10, 200, 10):
        assert m("maint", t, 0) == []


def test_state_metric_codes() -> None:
    m = Machine(
        {
            "id": "plc",
            "state_metric": {
                "metric": "state",
                "codes": {0: "IDLE", 1: "RUNNING", 2: "DOWN", 3: "MAINTENANCE"},
            },
        }
    )
    assert m("state", 0, 1) == [(S.RUNNING, 0, None)]
    assert m("state", 1, 3) == [(S.MAINTENANCE, 1000, S.RUNNING)]
    assert m("state", 2, 2) == [(S.DOWN, 2000, S.MAINTENANCE)]
    assert m("state", 3, 7) == [(S.IDLE, 3000, S.DOWN)]


def test_a_duration_in_a_state_condition_dates_the_state_by_its_deadline() -> None:
    rule = {
        "id": "spin",
        "down_after": None,
        "states": [{"state": "RUNNING", "when": {"metric": "rpm", "above": 10, "for": "5s"}}],
    }
    m = Machine(rule)
    assert m("rpm", 0, 100) == [(S.IDLE, 0, None)]
    assert m("rpm", 4, 100) == []
    assert m("rpm", 6, 100) == [(S.RUNNING, 5000, S.IDLE)]


def test_first_matching_rule_per_machine_and_selectors() -> None:
    presses = {**RPM_RULE, "id": "presses", "device_types": ["press"]}
    plc = {
        "id": "plc",
        "devices": ["press-9"],
        "state_metric": {"metric": "s", "codes": {1: "RUNNING"}},
    }
    m = Machine(plc, presses, machine="press-9")
    assert m("rpm", 0, 100) == []
    assert m("s", 1, 1) == [(S.RUNNING, 1000, None)]


def test_event_has_deterministic_id_key_and_contract_fields() -> None:
    change = StateChange("press-1", S.DOWN, 60_000, S.RUNNING)
    topic, key, value, headers = encode_state(change)
    again = encode_state(StateChange("press-1", S.DOWN, 60_000, S.RUNNING))
    assert (topic, key) == ("telemetry.machine-states.v1", b"press-1")
    assert value == b'{"machine_id":"press-1","state":"DOWN","since":60000,"previous":"RUNNING"}'
    assert dict(headers)["ce_id"] == dict(again[3])["ce_id"]
    assert dict(headers)["ce_subject"] == b"press-1"


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x"},
        {
            "id": "x",
            "states": [{"state": "RUNNING", "when": {"metric": "r", "above": 1}}],
            "state_metric": {"metric": "s", "codes": {1: "RUNNING"}},
        },
        {"id": "x", "state_metric": {"metric": "s", "codes": {1: "SPINNING"}}},
        {"id": "x", "state_metric": {"metric": "s", "codes": {}}},
    ],
)
def test_invalid_state_rules_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_rules({"machine_states": [bad]})
