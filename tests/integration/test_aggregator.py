"""The aggregator on a real broker: poison goes to the DLQ with provenance while good data
flows on, and a SIGKILL mid-stream loses no window and changes none."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from support.telemetry import (
    ServiceProcess,
    TopicReader,
    assert_windows_equal,
    end_offsets,
    expected_windows,
    start_telemetry,
    window_key,
)

from millrace.simulator.config import SimulatorConfig
from millrace.simulator.runner import run_simulation
from shared.settings import ServiceSettings

READINGS = "telemetry.readings.v1"
AGGREGATES = "telemetry.aggregates.v1"


@pytest.fixture
async def telemetry(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    service = await start_telemetry(kafka_bootstrap, tmp_path / "telemetry.log")
    yield service
    service.kill()


async def test_poison_goes_to_dlq_with_provenance_and_good_data_flows(
    kafka_bootstrap: str, telemetry: ServiceProcess
) -> None:
    dlq_start = await end_offsets(kafka_bootstrap, f"{READINGS}.dlq")
    agg_start = await end_offsets(kafka_bootstrap, AGGREGATES)
    device = f"poison-{uuid.uuid4().hex[:6]}"
    now = time.time_ns() // 1_000_000
    good: list[dict[str, Any]] = [
        {"metric": "temp", "ts": now - 3000 + i * 100, "value": 20.0 + i} for i in range(20)
    ]
    poison = [
        (b"{not json", "undecodable"),
        (
            orjson.dumps(
                {"device_id": device, "readings": [{"metric": "temp", "ts": now, "value": "hot"}]}
            ),
            "schema_invalid",
        ),
        (orjson.dumps({"device_id": "someone-else", "readings": good[:1]}), "key_mismatch"),
        (
            orjson.dumps(
                {
                    "device_id": device,
                    "readings": [{"metric": "temp", "ts": now + 3_600_000, "value": 1}],
                }
            ),
            "future_timestamp",
        ),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = []
        half = len(good) // 2
        for r in good[:half]:
            await producer.send_and_wait(
                READINGS, orjson.dumps({"device_id": device, "readings": [r]}), key=device.encode()
            )
        for value, _reason in poison:
            sent.append(
                await producer.send_and_wait(
                    READINGS, value, key=device.encode(), headers=[("origin", b"test")]
                )
            )
        for r in good[half:]:
            await producer.send_and_wait(
                READINGS, orjson.dumps({"device_id": device, "readings": [r]}), key=device.encode()
            )
    finally:
        await producer.stop()

    async with TopicReader(kafka_bootstrap, dlq_start) as dlq:
        await dlq.poll_until(lambda recs: len(recs) >= len(poison), timeout_s=30)
        records = dlq.records
    assert len(records) == len(poison)
    for record, meta, (value, reason) in zip(records, sent, poison, strict=True):
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value
        assert record.key == device.encode()
        assert headers["origin"] == "test"
        assert headers["dlq_reason"] == reason
        assert headers["dlq_error"]
        assert headers["dlq_source_topic"] == READINGS
        assert headers["dlq_source_partition"] == str(meta.partition)
        assert headers["dlq_source_offset"] == str(meta.offset)
        assert headers["dlq_service"] == "telemetry"

    want = expected_windows(
        [(device, r["metric"], r["ts"], r["value"]) for r in good], (1000, 5000)
    )
    async with TopicReader(kafka_bootstrap, agg_start) as aggregates:

        def complete(_: object) -> bool:
            keys = {window_key(d) for _, d in aggregates.decoded() if d["device_id"] == device}
            return set(want) <= keys

        await aggregates.poll_until(complete, timeout_s=30)
        for _, data in aggregates.decoded():
            if data["device_id"] == device:
                assert_windows_equal(data, want[window_key(data)])
    assert await telemetry.metric("millrace_dlq_records_total") == len(poison)


async def test_sigkill_mid_stream_every_window_exactly_once_after_dedupe(
    kafka_bootstrap: str, telemetry: ServiceProcess
) -> None:
    agg_start = await end_offsets(kafka_bootstrap, AGGREGATES)
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    cfg = SimulatorConfig(
        devices=40,
        metrics=3,
        rate=3000.0,
        duration_s=4.0,
        seed=7,
        start_ms=time.time_ns() // 1_000_000 - 120_000,
        record=True,
    )
    sim = asyncio.create_task(run_simulation(cfg, kafka_settings=settings))
    async with TopicReader(kafka_bootstrap, agg_start) as reader:
        await reader.poll_until(lambda recs: len(recs) > 50, timeout_s=30)
        telemetry.kill()  # SIGKILL: no flush, no commit
        report = await sim
        assert report.errors == {}
        telemetry.start()
        await telemetry.wait_ready()
        readings = [
            (s.device_id, r["metric"], r["ts"], float(r["value"]))
            for s in report.batches
            for r in s.batch["readings"]
        ]
        want = expected_windows(readings, (1000, 5000))
        devices = {d for d, *_ in readings}

        def complete(_: object) -> bool:
            keys = {window_key(d) for _, d in reader.decoded() if d["device_id"] in devices}
            return set(want) <= keys

        await reader.poll_until(complete, timeout_s=90)
        by_id: dict[str, dict[str, object]] = {}
        duplicates = 0
        for headers, data in reader.decoded():
            if data["device_id"] not in devices:
                continue
            assert_windows_equal(data, want[window_key(data)])  # a replayed window is identical
            if headers["ce_id"] in by_id:
                duplicates += 1
            by_id[headers["ce_id"]] = data
    assert {window_key(d) for d in by_id.values()} == set(want)
    assert len(by_id) == len(want)
    print(f"windows={len(want)} duplicates_after_kill={duplicates}")


async def _send(bootstrap: str, readings: list[tuple[str, int, float]]) -> None:
    """One record per (device, ts, value) of metric ``temp``, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for device, ts, value in readings:
            body = {"device_id": device, "readings": [{"metric": "temp", "ts": ts, "value": value}]}
            await producer.send(READINGS, orjson.dumps(body), key=device.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_windows_sealed_ahead_reach_kafka_stamped_at_their_close(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Windows that ended wait out the allowed lateness (2 s here) sealed: their records in
    batches prepared ahead, which the close stamps and sends. On the real broker: every window
    arrives once and right, stamped at the close, not at the seal; and a boundary one of whose
    sealed windows then takes a reading within the lateness is made again, that reading in."""
    service = await start_telemetry(
        kafka_bootstrap,
        tmp_path / "telemetry.log",
        {
            "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": "2000",
            "MILLRACE_TELEMETRY_IDLE_CLOSE_MS": "60000",  # only data closes windows here
            # Sealing ahead is paced by one clock per partition (ADR 0004).
            "MILLRACE_TELEMETRY_EVENT_TIME": "partition",
        },
    )
    try:
        agg_start = await end_offsets(kafka_bootstrap, AGGREGATES)
        devices = [f"seal-{uuid.uuid4().hex[:6]}-{i}" for i in range(20)]
        now = time.time_ns() // 1_000_000
        base = now - now % 5000 - 60_000
        sent: list[tuple[str, int, float]] = []
        closed_at: list[int] = []
        for step, start in enumerate((base, base + 5000)):
            # Three readings per device in [start, start + 1 s), then one 2.6 s later: that
            # window has ended (past its seal point, half the lateness) and is sealed in idle polls.
            ended = [
                (d, start + 40 * k + i, 20.0 + k + i)
                for i in range(3)
                for k, d in enumerate(devices)
            ]
            await _send(kafka_bootstrap, [*ended, *((d, start + 2600, 1.0) for d in devices)])
            sent += ended
            await asyncio.sleep(2.0)
            if step == 1:
                late = (devices[3], start + 500, 99.0)  # within the lateness: voids its seal
                await _send(kafka_bootstrap, [late])
                sent.append(late)
            closed_at.append(time.time_ns() // 1_000_000)
            await _send(kafka_bootstrap, [(d, start + 3100, 1.0) for d in devices])  # the close
        want = expected_windows([(d, "temp", ts, v) for d, ts, v in sent], (1000,))
        async with TopicReader(kafka_bootstrap, agg_start) as reader:

            def ours() -> list[tuple[int, dict[str, Any]]]:
                return [
                    (record.timestamp, orjson.loads(record.value))
                    for record in reader.records
                    if orjson.loads(record.value)["device_id"] in devices
                ]

            def complete(_: object) -> bool:
                return set(want) <= {window_key(d) for _, d in ours()}

            await reader.poll_until(complete, timeout_s=30)
            got = [(stamp, d) for stamp, d in ours() if window_key(d) in want]
        assert sorted(window_key(d) for _, d in got) == sorted(want)  # each once
        for stamp, data in got:
            assert_windows_equal(data, want[window_key(data)])
            step = 0 if data["window_start"] == base else 1
            assert stamp >= closed_at[step]  # stamped at the close, not at the seal
        assert await service.metric("millrace_telemetry_windows_sent_sealed_total") >= 1
        assert await service.metric("millrace_telemetry_sealed_windows_voided_total") >= 1
    finally:
        service.kill()
