"""Plan events to outbox rows, with ``ce_id`` derived from the plan id and version, so a
plan version re-committed after a crash could only ever carry the same ids."""

from __future__ import annotations

from datetime import datetime

import orjson

from contracts.base import Contract
from contracts.envelope import derived_id, new_event
from contracts.scheduling import OeeReported, OperationScheduled, SchedulePublished

SERVICE = "scheduling"
PUBLISHED_TOPIC = "scheduling.schedule-published.v1"
SCHEDULED_TOPIC = "scheduling.operation-scheduled.v1"
OEE_TOPIC = "scheduling.oee-reported.v1"

OutboxRow = tuple[str, str, str, str, bytes]  # topic, key, ce_id, headers json, payload


def event_id(plan_id: str, version: int, *what: object) -> str:
    return derived_id(SERVICE, plan_id, version, *what)


def _row(topic: str, key: str, ce_id: str, event: Contract, at: datetime) -> OutboxRow:
    envelope = new_event(topic=topic, service=SERVICE, subject=key, event_id=ce_id, time=at)
    headers = orjson.dumps([[k, v.decode()] for k, v in envelope.headers()]).decode()
    return topic, key, ce_id, headers, orjson.dumps(event.model_dump(mode="json"))


def published_row(event: SchedulePublished) -> OutboxRow:
    ce_id = event_id(event.plan_id, event.version, "published")
    return _row(PUBLISHED_TOPIC, event.plan_id, ce_id, event, event.published_at)


def scheduled_row(event: OperationScheduled, at: datetime) -> OutboxRow:
    assert event.plan_id is not None
    assert event.plan_version is not None
    ce_id = event_id(event.plan_id, event.plan_version, event.work_order_id, event.operation_seq)
    return _row(SCHEDULED_TOPIC, event.work_order_id, ce_id, event, at)


def oee_row(event: OeeReported) -> OutboxRow:
    """Keyed by machine; the id names the machine and period, so a period is one event."""
    ce_id = derived_id(SERVICE, "oee", event.machine_id, event.period_start)
    return _row(OEE_TOPIC, event.machine_id, ce_id, event, event.reported_at)
