"""Rules files and settings fail closed; alarm records match the contract, ids are derived."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from contracts.envelope import parse_headers
from contracts.telemetry import AlarmEvent, Severity
from services.telemetry.alarms.emit import alarm_event_id, alarm_id, encode_alarm
from services.telemetry.alarms.instance import AlarmTransition
from services.telemetry.rules.book import load_rules, parse_rules
from services.telemetry.settings import TelemetrySettings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy/local/alarm-rules.yaml"
DB = "postgresql://u:p@127.0.0.1:5432/millrace"


def transition(state: str = "raised", ts: int = 61_000) -> AlarmTransition:
    return AlarmTransition(
        device_id="press-7",
        rule_id="spindle-overheat",
        state="raised" if state == "raised" else "cleared",
        severity=Severity.MAJOR,
        metric="spindle_temp_c",
        value=91.5,
        threshold=90.0,
        ts=ts,
        raised_at=61_000,
        description="too hot",
    )


def test_sample_rules_cover_the_simulator_metrics() -> None:
    book = load_rules(SAMPLE)
    assert {"spindle_temp_c", "vibration_mm_s", "spindle_rpm", "power_kw"} <= book.metrics
    assert book.alarms
    assert book.states


def test_readme_example_is_a_valid_rules_file() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Alarms and machine states", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    book = parse_rules(yaml.safe_load(match.group(1)))
    assert [r.id for r in book.alarms] == ["spindle-overheat", "sensor-silent"]


@pytest.mark.parametrize("seed", ["1", "2"])
def test_a_rules_fingerprint_is_the_same_in_every_process(seed: str) -> None:
    # A snapshot is kept only for a rule with the same fingerprint: a restarted process (another
    # string-hash seed, so other set orders) must compute the ones this process computes.
    code = (
        "from services.telemetry.rules.book import load_rules\n"
        f"book = load_rules({str(SAMPLE)!r})\n"
        "print([r.fingerprint for r in book.alarms] + [r.fingerprint for r in book.states])"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, check=True
    )
    book = load_rules(SAMPLE)
    here = [r.fingerprint for r in book.alarms] + [r.fingerprint for r in book.states]
    assert out.stdout.decode().strip() == str(here)
    assert any(len(r.selector.device_types) > 1 for r in book.alarms)


def test_rules_need_a_database() -> None:
    with pytest.raises(ValueError, match="MILLRACE_DATABASE_URL"):
        TelemetrySettings(telemetry_alarm_rules=SAMPLE)
    settings = TelemetrySettings(telemetry_alarm_rules=SAMPLE, database_url=DB)
    assert settings.telemetry_alarm_rules == SAMPLE


def test_a_broken_or_missing_rules_file_fails_at_start(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("alarms:\n  - id: x\n    severity: major\n    when: {metric: t}\n")
    with pytest.raises(ValueError, match="exactly one"):
        TelemetrySettings(telemetry_alarm_rules=broken, database_url=DB)
    with pytest.raises(ValueError, match="cannot read"):
        TelemetrySettings(telemetry_alarm_rules=tmp_path / "missing.yaml", database_url=DB)


def test_alarm_record_is_a_valid_contract_with_cloudevents_headers() -> None:
    topic, key, value, headers = encode_alarm(transition())
    assert (topic, key) == ("telemetry.alarms.v1", b"press-7")
    event = AlarmEvent.model_validate_json(value)
    assert event.alarm_id == alarm_id(transition())
    assert (event.state, event.ts, event.raised_at) == ("raised", 61_000, 61_000)
    ce = parse_headers(headers)
    assert ce.type == "io.millrace.telemetry.alarms.v1"
    assert (ce.subject, ce.source) == ("press-7", "/millrace/telemetry")


def test_ids_are_derived_so_a_replay_is_the_same_event() -> None:
    def ce_id(t: AlarmTransition) -> str:
        return parse_headers(encode_alarm(t)[3]).id

    assert ce_id(transition()) == ce_id(transition())
    assert ce_id(transition()) == alarm_event_id("press-7", "spindle-overheat", 61_000, "raised")
    assert ce_id(transition()) != ce_id(transition("cleared", 70_000))
    raised, cleared = transition(), transition("cleared", 70_000)
    assert orjson.loads(encode_alarm(raised)[2])["alarm_id"] == alarm_id(cleared)
