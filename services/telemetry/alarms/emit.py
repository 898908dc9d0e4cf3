"""Alarm transitions -> ``telemetry.alarms.v1`` records.

Every ``ce_id`` is derived from what identifies the fact, ``(device, rule, raised_at, state)``,
so a replay republishes the same event.
"""

from __future__ import annotations

import orjson

from contracts.envelope import (
    CloudEvent,
    Headers,
    ce_type_for,
    derived_id,
    rfc3339_from_millis,
    schema_id_for,
)
from services.telemetry.alarms.instance import AlarmTransition

ALARMS_TOPIC = "telemetry.alarms.v1"
_SOURCE = "/millrace/telemetry"

# (topic, key, value, headers), as the engine's monitor sends it.
Record = tuple[str, bytes, bytes, Headers]


def alarm_event_id(device_id: str, rule_id: str, raised_at: int, state: str) -> str:
    """The ``ce_id`` of an alarm event; a consumer (or the benchmark) can compute it to find
    the event a given reading must cause."""
    return derived_id("alarm", device_id, rule_id, raised_at, state)


def alarm_id(t: AlarmTransition) -> str:
    """One id for an alarm's whole life, shared by its raised and cleared events."""
    return derived_id("alarm", t.device_id, t.rule_id, t.raised_at)


def encode_alarm(t: AlarmTransition) -> Record:
    data: dict[str, object] = {
        "device_id": t.device_id,
        "rule": t.rule_id,
        "state": t.state,
        "severity": t.severity.value,
        "metric": t.metric,
        "value": t.value,
        "threshold": t.threshold,
        "ts": t.ts,
        "alarm_id": alarm_id(t),
        "raised_at": t.raised_at,
    }
    if t.description is not None:
        data["description"] = t.description
    event = CloudEvent(
        id=alarm_event_id(t.device_id, t.rule_id, t.raised_at, t.state),
        source=_SOURCE,
        type=ce_type_for(ALARMS_TOPIC),
        subject=t.device_id,
        time=rfc3339_from_millis(t.ts),
        dataschema=schema_id_for(ALARMS_TOPIC),
    )
    return ALARMS_TOPIC, t.device_id.encode(), orjson.dumps(data), event.headers()
