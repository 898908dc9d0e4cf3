"""Alarms and machine states on a real broker and a real PostgreSQL, with the telemetry service
as a real process: one raise per alarm, the clear after a SIGKILL, states with since/previous;
each in one process with the windows (role ``all``) and in a process of its own (``alarms``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from support.telemetry import (
    ServiceProcess,
    TopicReader,
    consumer_group,
    end_offsets,
    start_telemetry,
)

from contracts.telemetry import AlarmEvent, MachineState

READINGS = "telemetry.readings.v1"
ALARMS = "telemetry.alarms.v1"
STATES = "telemetry.machine-states.v1"

RULES = """
alarms:
  - id: it-overheat
    severity: critical
    description: integration test
    devices: [{device}]
    when: {{metric: spindle_temp_c, above: 90, for: 2s}}
    clear_when: {{metric: spindle_temp_c, below: 85, for: 1s}}
machine_states:
  - id: it-spindle
    devices: [{device}]
    down_after: 10m
    states:
      - {{state: RUNNING, when: {{metric: spindle_rpm, above: 10}}}}
"""


SILENCE_RULES = """
alarms:
  - id: it-silent
    severity: major
    devices: [{device}]
    when: {{metric: spindle_temp_c, absent_for: 2s}}
machine_states:
  - id: it-down
    devices: [{device}]
    down_after: 3s
    states:
      - {{state: RUNNING, when: {{metric: spindle_rpm, above: 10}}}}
"""


@pytest.fixture
def device() -> str:
    return f"press-it{uuid.uuid4().hex[:8]}"


@pytest.fixture
def rules_template() -> str:
    return RULES


@pytest.fixture(params=["all", "alarms"])
def role(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def telemetry(
    kafka_bootstrap: str,
    database_url: str,
    tmp_path: Path,
    device: str,
    rules_template: str,
    role: str,
) -> AsyncIterator[ServiceProcess]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_template.format(device=device))
    service = await start_telemetry(
        kafka_bootstrap,
        tmp_path / "telemetry.log",
        {
            "MILLRACE_DATABASE_URL": database_url,
            "MILLRACE_TELEMETRY_ALARM_RULES": str(rules),
            "MILLRACE_TELEMETRY_ALARM_SNAPSHOT_INTERVAL_MS": "100",
            "MILLRACE_TELEMETRY_WINDOWS": "1s",
            "MILLRACE_TELEMETRY_ROLE": role,
        },
    )
    yield service
    service.kill()


async def send(bootstrap: str, device: str, readings: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for r in readings:
            value = orjson.dumps({"device_id": device, "readings": [r]})
            await producer.send_and_wait(READINGS, value, key=device.encode())
    finally:
        await producer.stop()


def series(start: int, stop: int, temp: float, rpm: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ts in range(start, stop, 500):
        out.append({"metric": "spindle_temp_c", "ts": ts, "value": temp})
        out.append({"metric": "spindle_rpm", "ts": ts, "value": rpm})
    return out


async def wait_for(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.2)


async def test_alarm_raised_once_survives_sigkill_and_clears_state_published(
    kafka_bootstrap: str, database_url: str, telemetry: ServiceProcess, device: str, role: str
) -> None:
    consumes_as = consumer_group(telemetry.env["MILLRACE_TELEMETRY_CONSUMER_GROUP"], role)
    starts = {**await end_offsets(kafka_bootstrap, ALARMS)}
    starts.update(await end_offsets(kafka_bootstrap, STATES))
    base = time.time_ns() // 1_000_000 - 60_000

    async with TopicReader(kafka_bootstrap, starts) as reader:

        def mine() -> list[tuple[str, dict[str, str], dict[str, Any]]]:
            out = []
            for record in reader.records:
                headers = {k: v.decode() for k, v in record.headers}
                data = orjson.loads(record.value)
                if data.get("device_id", data.get("machine_id")) == device:
                    out.append((record.topic, headers, data))
            return out

        await send(kafka_bootstrap, device, series(base, base + 4_000, temp=95, rpm=1200))
        await reader.poll_until(
            lambda _: {t for t, _, _ in mine()} == {ALARMS, STATES}, timeout_s=30
        )
        [(_, raised_headers, raised)] = [(t, h, d) for t, h, d in mine() if t == ALARMS]
        assert AlarmEvent.model_validate(raised).state == "raised"
        assert (raised["ts"], raised["raised_at"], raised["value"]) == (base + 2_000,) * 2 + (95,)
        assert raised_headers["ce_type"] == "io.millrace.telemetry.alarms.v1"
        assert raised_headers["ce_subject"] == device
        assert raised_headers["ce_specversion"] == "1.0"
        assert raised_headers["ce_source"] == "/millrace/telemetry"
        assert raised_headers["content-type"] == "application/json"
        [(_, state_headers, running)] = [(t, h, d) for t, h, d in mine() if t == STATES]
        assert MachineState.model_validate(running).state == "RUNNING"
        assert (running["since"], running["previous"]) == (base, None)
        assert state_headers["ce_type"] == "io.millrace.telemetry.machine-states.v1"

        # Let the windows close and the offsets pass every hot reading: after the SIGKILL the
        # replay starts past them, so only the snapshot can know the alarm is active.
        conn = await asyncpg.connect(database_url)
        try:

            async def snapshot_covers_all() -> bool:
                row = await conn.fetchval(
                    "SELECT max(next_offset) FROM telemetry.engine_snapshots "
                    "WHERE consumer_group = $1",
                    consumes_as,
                )
                return row is not None

            await wait_for(snapshot_covers_all, timeout_s=30)
        finally:
            await conn.close()
        await asyncio.sleep(3)
        telemetry.kill()
        telemetry.start()
        await telemetry.wait_ready()

        await send(kafka_bootstrap, device, series(base + 5_000, base + 5_500, temp=95, rpm=1200))

        async def restored() -> bool:
            return await telemetry.metric("millrace_telemetry_active_alarms") == 1

        await wait_for(restored, timeout_s=30)
        await send(kafka_bootstrap, device, series(base + 6_000, base + 8_500, temp=80, rpm=0))

        def cleared(_: object) -> bool:
            return any(d.get("state") == "cleared" for t, _, d in mine() if t == ALARMS)

        await reader.poll_until(cleared, timeout_s=30)
        await reader.poll_until(lambda _: len([t for t, _, _ in mine() if t == STATES]) >= 2, 30)

    alarms = [(h, d) for t, h, d in mine() if t == ALARMS]
    raises = [h["ce_id"] for h, d in alarms if d["state"] == "raised"]
    assert raises == [raised_headers["ce_id"]]
    [clear] = {h["ce_id"]: d for h, d in alarms if d["state"] == "cleared"}.values()
    assert (clear["ts"], clear["raised_at"]) == (base + 7_000, base + 2_000)
    assert clear["alarm_id"] == raised["alarm_id"]
    states = {h["ce_id"]: d for t, h, d in mine() if t == STATES}
    assert [(d["state"], d["since"], d["previous"]) for d in states.values()] == [
        ("RUNNING", base, None),
        ("IDLE", base + 6_000, "RUNNING"),
    ]


@pytest.mark.parametrize("rules_template", [SILENCE_RULES])
async def test_silence_raises_absence_and_down_on_a_quiet_partition_by_wall_clock(
    kafka_bootstrap: str, telemetry: ServiceProcess, device: str
) -> None:
    starts = {**await end_offsets(kafka_bootstrap, ALARMS)}
    starts.update(await end_offsets(kafka_bootstrap, STATES))
    now = time.time_ns() // 1_000_000
    await send(kafka_bootstrap, device, series(now, now + 1, temp=50, rpm=900))
    async with TopicReader(kafka_bootstrap, starts) as reader:

        def mine() -> list[dict[str, Any]]:
            out = [orjson.loads(r.value) for r in reader.records]
            return [d for d in out if device in (d.get("device_id"), d.get("machine_id"))]

        await reader.poll_until(lambda _: len(mine()) >= 3, timeout_s=30)
    events = mine()
    [absent] = [d for d in events if d.get("rule") == "it-silent"]
    assert (absent["state"], absent["ts"], absent["threshold"]) == ("raised", now + 2_000, 2.0)
    states = [(d["state"], d["since"], d["previous"]) for d in events if "machine_id" in d]
    assert states == [("RUNNING", now, None), ("DOWN", now + 3_000, "RUNNING")]
