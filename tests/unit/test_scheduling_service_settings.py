"""Scheduling settings fail closed, and the planning rules they describe."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.scheduling.config import rules_of
from services.scheduling.domain.calendar import ShiftRule
from services.scheduling.domain.model import Interval
from services.scheduling.settings import SchedulingSettings

DB = "postgresql://u:p@127.0.0.1/db"
PLANT = {"sha256": hashlib.sha256(b"t").hexdigest(), "role": "plant", "name": "ops"}


def settings(**kw: Any) -> SchedulingSettings:
    return SchedulingSettings(**({"database_url": DB} | kw))


def test_defaults() -> None:
    s = settings()
    assert s.http_port == 8082
    assert s.scheduling_consumer_group == "millrace-scheduling"
    assert (s.scheduling_time_limit_s, s.scheduling_workers) == (5.0, 2)
    assert s.scheduling_duration_scale == 1.0


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"database_url": None}, "MILLRACE_DATABASE_URL"),
        ({"scheduling_tokens": [PLANT, PLANT]}, "twice"),
        ({"scheduling_tokens": [{**PLANT, "customer": "acme"}]}, "plant token names none"),
        (
            {
                "scheduling_maintenance": [
                    {
                        "machine_id": "m",
                        "start": "2027-01-01T10:00:00Z",
                        "end": "2027-01-01T09:00:00Z",
                    }
                ]
            },
            "after its start",
        ),
        (
            {
                "scheduling_maintenance": [
                    {
                        "machine_id": "m",
                        "start": "2027-01-01T08:00:00",
                        "end": "2027-01-01T09:00:00",
                    }
                ]
            },
            "UTC offset",
        ),
        (
            {"scheduling_calendar": {"c": [{"weekdays": [7], "start": "06:00", "end": "14:00"}]}},
            "weekdays",
        ),
        ({"scheduling_duration_scale": 0}, "greater than 0"),
    ],
)
def test_invalid_settings_are_refused(kw: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        settings(**kw)


def test_prod_needs_tokens_and_real_durations() -> None:
    secure = {
        "env": "prod",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "u",
        "kafka_sasl_password": "p",
    }
    with pytest.raises(ValidationError, match="MILLRACE_SCHEDULING_TOKENS"):
        settings(**secure)
    with pytest.raises(ValidationError, match="demo setting"):
        settings(**secure, scheduling_tokens=[PLANT], scheduling_duration_scale=0.01)
    assert settings(**secure, scheduling_tokens=[PLANT]).env == "prod"


def test_rules_from_settings() -> None:
    rules = rules_of(
        settings(
            scheduling_repair_s=600,
            scheduling_duration_scale=0.5,
            scheduling_maintenance=[
                {
                    "machine_id": "saw-01",
                    "start": "2027-01-04T10:00:00Z",
                    "end": "2027-01-04T12:00:00Z",
                },
                {
                    "machine_id": "saw-01",
                    "start": "2027-01-04T11:00:00+00:00",
                    "end": "2027-01-04T13:00:00+00:00",
                },
            ],
            scheduling_calendar={
                "cutting": [{"weekdays": [0, 1], "start": "06:00", "end": "22:00"}]
            },
        )
    )
    ten = int(datetime(2027, 1, 4, 10, tzinfo=UTC).timestamp())
    assert rules.maintenance == {"saw-01": (Interval(ten, ten + 3 * 3600),)}
    assert rules.shifts == {"cutting": (ShiftRule(frozenset({0, 1}), time(6), time(22)),)}
    assert (rules.repair_s, rules.duration_scale) == (600, 0.5)


def test_every_scheduling_setting_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"MILLRACE_{name.upper()}"
        for name in SchedulingSettings.model_fields
        if name.startswith("scheduling_") and f"MILLRACE_{name.upper()}" not in readme
    ]
    assert missing == []
