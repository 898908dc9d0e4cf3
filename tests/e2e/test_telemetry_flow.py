"""Seeded devices -> Kafka and HTTP -> telemetry service (a real process) -> aggregates on
Kafka, read by a plain aiokafka consumer and checked against an independent computation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from support.telemetry import (
    TopicReader,
    assert_windows_equal,
    end_offsets,
    expected_windows,
    read_with_confluent,
    start_telemetry,
    window_key,
)

from contracts.envelope import derived_id
from contracts.manifest import TOPICS
from millrace.simulator.config import SimulatorConfig
from millrace.simulator.runner import run_simulation
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

pytestmark = pytest.mark.e2e

SIZES = (1_000, 5_000)


async def test_simulated_fleet_to_exact_windows(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    await ensure_topics(settings, TOPICS)
    start = await end_offsets(kafka_bootstrap, "telemetry.aggregates.v1")
    service = await start_telemetry(
        kafka_bootstrap,
        tmp_path / "telemetry.log",
        {
            "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": "1500",
            "MILLRACE_TELEMETRY_COMMIT_INTERVAL_MS": "200",
        },
    )
    try:
        cfg = SimulatorConfig(
            devices=12,
            metrics=3,
            rate=180.0,  # 36 series sampled every 200 ms
            duration_s=6.0,
            seed=42,
            transport="both",
            http_url=f"{service.url}/v1/readings",
            record=True,
        )
        report = await run_simulation(cfg, kafka_settings=settings)
        assert report.errors == {}
        assert set(report.readings_sent) == {"kafka", "http"}
        readings = [
            (sent.device_id, r["metric"], r["ts"], float(r["value"]))
            for sent in report.batches
            for r in sent.batch["readings"]
        ]
        assert len(readings) == report.total_sent > 500
        want = expected_windows(readings, SIZES)
        devices = {d for d, *_ in readings}

        async with TopicReader(kafka_bootstrap, start) as reader:

            def complete(records: list[object]) -> bool:
                keys = {window_key(data) for _, data in reader.decoded()}
                return set(want) <= keys

            await reader.poll_until(complete, timeout_s=60)
            decoded = [(h, d) for h, d in reader.decoded() if d["device_id"] in devices]

        keys = Counter(window_key(d) for _, d in decoded)
        duplicated = [k for k, n in keys.items() if n > 1]
        assert duplicated == []
        assert set(keys) == set(want)
        for headers, data in decoded:
            key = window_key(data)
            assert_windows_equal(data, want[key])
            assert headers["ce_specversion"] == "1.0"
            assert headers["ce_type"] == "io.millrace.telemetry.aggregates.v1"
            assert headers["ce_source"] == "/millrace/telemetry"
            assert headers["ce_subject"] == data["device_id"]
            assert headers["content-type"] == "application/json"
            assert headers["ce_id"] == derived_id("window", key[0], key[1], key[2], key[3])
        plain = read_with_confluent(kafka_bootstrap, start, len(reader.records))
        assert len(plain) == len(reader.records)
        for headers, data in plain:
            if data["device_id"] in devices:
                assert headers["ce_type"] == "io.millrace.telemetry.aggregates.v1"
                assert_windows_equal(data, want[window_key(data)])
        assert await service.metric("millrace_telemetry_late_readings_total") == 0
        assert await service.metric("millrace_telemetry_readings_total") >= len(readings)
    finally:
        code = service.terminate()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the clean exit here.
    assert code in (0, -15), service.log.read_text()[-3000:]
    assert '"telemetry stopped"' in service.log.read_text()
