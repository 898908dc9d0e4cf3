"""Windows and alarms in processes of their own (``MILLRACE_TELEMETRY_ROLE``): what each role
consumes as, what it needs, and the window state of a process without windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from contracts.telemetry import Quality
from services.telemetry import app
from services.telemetry.app import (
    _monitor,
    create_app,
    make_aggregator_clients,
    make_aggregator_consumer,
)
from services.telemetry.decode_fast import FastReading
from services.telemetry.kafka.records import make_raw_consumer
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.partition import PartitionWindows
from shared.kafka import make_producer, producer_config

RULES = Path(__file__).resolve().parents[2] / "deploy" / "local" / "alarm-rules.yaml"
DB = "postgresql://millrace:secret@127.0.0.1:5432/millrace"


def _settings(**kw: object) -> TelemetrySettings:
    # No database unless a test gives one: MILLRACE_DATABASE_URL, set in the environment for
    # the integration tests, would otherwise satisfy the checks a test expects to fail.
    kw.setdefault("database_url", None)
    return TelemetrySettings(kafka_bootstrap="127.0.0.1:9", **kw)  # type: ignore[arg-type]


def test_one_process_runs_everything_by_default() -> None:
    s = _settings()
    assert (s.telemetry_role, s.runs_windows, s.runs_alarms) == ("all", True, True)
    assert s.telemetry_group == "millrace-telemetry"


async def test_the_alarms_role_consumes_in_a_group_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    windows = _settings(telemetry_role="windows")
    alarms = _settings(telemetry_role="alarms", telemetry_alarm_rules=RULES, database_url=DB)
    assert (windows.runs_windows, windows.runs_alarms) == (True, False)
    assert (alarms.runs_windows, alarms.runs_alarms) == (False, True)
    # Never one group: the two roles would split the partitions between them.
    assert windows.telemetry_group == "millrace-telemetry"
    assert alarms.telemetry_group == "millrace-telemetry-alarms"
    # The group the consumer is made in, as the service asks for it (aiokafka's consumer has
    # no public attribute that tells it).
    groups: list[str] = []

    def recorded(settings: TelemetrySettings, *topics: str, group_id: str, **kw: Any) -> Any:
        groups.append(group_id)
        return make_raw_consumer(settings, *topics, group_id=group_id, **kw)

    monkeypatch.setattr(app, "make_raw_consumer", recorded)
    consumer = make_aggregator_consumer(alarms)
    assert groups == ["millrace-telemetry-alarms"]
    await consumer.stop()


def test_the_alarms_role_needs_rules_and_their_database() -> None:
    with pytest.raises(ValidationError, match="ROLE=alarms needs MILLRACE_TELEMETRY_ALARM_RULES"):
        _settings(telemetry_role="alarms")
    with pytest.raises(ValidationError, match="needs MILLRACE_DATABASE_URL"):
        _settings(telemetry_role="alarms", telemetry_alarm_rules=RULES)
    with pytest.raises(ValidationError, match="AGGREGATOR_ENABLED=false"):
        _settings(
            telemetry_role="alarms",
            telemetry_alarm_rules=RULES,
            database_url=DB,
            telemetry_aggregator_enabled=False,
        )
    with pytest.raises(ValidationError, match="telemetry_role"):
        _settings(telemetry_role="everything")


def test_the_windows_role_ignores_alarm_rules() -> None:
    # One ConfigMap may serve both deployments: the windows role needs no database for rules
    # it does not run, and builds no alarm engine from them.
    s = _settings(telemetry_role="windows", telemetry_alarm_rules=RULES)
    monitor = _monitor(s, cast(asyncpg.Pool, object()))
    assert monitor.book.empty
    assert monitor.store is None


def test_without_window_sizes_only_the_watermark_and_counts_are_kept() -> None:
    pw = PartitionWindows((), 5_000)
    records = [
        ("press-1", [FastReading("t", 1_000, 1.0), FastReading("t", 9_000, 2.0, Quality.BAD)], 0),
        ("press-2", [FastReading("t", 4_000, 3.0)], 1),
    ]
    assert pw.add_records(records, Quality.BAD) == (2, 1, {})
    assert pw.watermark == 4_000  # a bad reading does not move it, as with windows
    assert (pw.open_count, pw.open, pw.has_closed) == (0, {}, False)
    assert pw.close() == []
    assert pw.safe_offset(2) == 2


async def test_the_alarms_role_serves_probes_and_metrics_but_no_ingest() -> None:
    # (In prod it needs no ingest token either: tests/unit/test_deploy_k8s_settings.py loads
    # the prod overlay's telemetry-alarms, which mounts none.)
    alarms = _settings(telemetry_role="alarms", telemetry_alarm_rules=RULES, database_url=DB)
    for settings, ingest in ((alarms, 404), (_settings(telemetry_role="windows"), 422)):
        app = create_app(settings, broker=KafkaBroker(), aggregator=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            # 422: the windows role validates the (empty) batch; the alarms role has no such route.
            assert (await client.post("/v1/readings", json={})).status_code == ingest


async def test_each_role_opens_only_the_producers_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    # The configuration each producer is made from, by role (aiokafka's producer has no public
    # attribute that tells its linger).
    configs: dict[str, dict[str, Any]] = {}

    def recorded(settings: TelemetrySettings, role: str = "producer") -> AIOKafkaProducer:
        configs[role] = producer_config(settings)
        return make_producer(settings, role)

    monkeypatch.setattr(app, "make_producer", recorded)
    alarms = _settings(telemetry_role="alarms", telemetry_alarm_rules=RULES, database_url=DB)
    roles = ((_settings(), False), (_settings(telemetry_role="windows"), True), (alarms, True))
    for settings, shared in roles:
        configs.clear()
        clients = make_aggregator_clients(settings)
        windows, events = clients.producer, clients.events
        assert (windows is events) is shared
        assert len(configs) == (1 if shared else 2)
        if settings.runs_alarms:
            assert configs["events"]["linger_ms"] == 0  # each event at once
        await clients.stop()  # never started: releases what the constructors made


async def test_the_alarms_role_starts_no_ingest_producer() -> None:
    alarms = _settings(telemetry_role="alarms", telemetry_alarm_rules=RULES, database_url=DB)
    nowhere = KafkaBroker("127.0.0.1:9")  # refuses connections: starting it fails at once
    app = create_app(alarms, broker=nowhere, aggregator=False)
    async with app.router.lifespan_context(app):
        pass
    windows = create_app(_settings(telemetry_role="windows"), nowhere, aggregator=False)
    with pytest.raises(Exception, match=r"127\.0\.0\.1"):  # the client's own error
        async with windows.router.lifespan_context(windows):
            pass
