"""Event time per device on a real broker: gateways uploading their backlog behind a live
device's newer readings on the same partitions are aggregated exactly, through a SIGKILL in the
middle of the uploads (the new owner reads the device clocks again and replays); a reading
after its device's window was emitted reaches ``telemetry.readings.v1.late``."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from support.telemetry import (
    WINDOWS_MS,
    TopicReader,
    assert_windows_equal,
    end_offsets,
    expected_windows,
    start_telemetry,
    window_key,
)

READINGS = "telemetry.readings.v1"
AGGREGATES = "telemetry.aggregates.v1"
LATE = "telemetry.readings.v1.late"
SIZES = WINDOWS_MS


async def _send(bootstrap: str, records: list[tuple[str, list[tuple[int, float]]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for device, readings in records:
            body = {
                "device_id": device,
                "readings": [{"metric": "temp", "ts": ts, "value": v} for ts, v in readings],
            }
            await producer.send(READINGS, orjson.dumps(body), key=device.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_backlogs_behind_live_devices_survive_a_sigkill_and_late_readings_are_sent(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    service = await start_telemetry(
        kafka_bootstrap, tmp_path / "telemetry.log", {"MILLRACE_TELEMETRY_IDLE_CLOSE_MS": "15000"}
    )
    try:
        agg_start = await end_offsets(kafka_bootstrap, AGGREGATES)
        late_start = await end_offsets(kafka_bootstrap, LATE)
        run = uuid.uuid4().hex[:6]
        now = time.time_ns() // 1_000_000
        live = [f"live-{run}-{i}" for i in range(4)]
        gateways = [f"gw-{run}-{i}" for i in range(12)]
        # Live devices first, 10 s of readings up to now: their clocks are near the wall clock.
        records = [(d, [(now - 10_000 + k * 200, float(k))]) for k in range(50) for d in live]
        # Then each gateway uploads its last 40 s (4 readings a second, 5 per record), one after
        # another: all of it behind the live devices' readings on the same partitions.
        for g, gw in enumerate(gateways):
            for k in range(0, 160, 5):
                readings = [(now - 50_000 + j * 250, float(g * 1000 + j)) for j in range(k, k + 5)]
                records.append((gw, readings))
        first, second = records[: len(records) // 2], records[len(records) // 2 :]
        # Then a reading of each gateway's first window, which its own clock has closed.
        late = [(gw, [(now - 50_000 + 10, -1.0)]) for gw in gateways]
        async with (
            TopicReader(kafka_bootstrap, agg_start) as aggregates,
            TopicReader(kafka_bootstrap, late_start) as late_reader,
        ):
            await _send(kafka_bootstrap, first)
            await aggregates.poll_until(lambda recs: len(recs) > 20, timeout_s=30)
            await asyncio.sleep(1.0)  # a few commits (every 100 ms), with their checkpoints
            service.kill()  # SIGKILL in the middle of the uploads: no flush, no commit
            await _send(kafka_bootstrap, second + late)
            service.start()
            await service.wait_ready()
            flat = [(d, "temp", ts, v) for d, rs in records for ts, v in rs]
            want = expected_windows(flat, SIZES)
            devices = set(live) | set(gateways)

            def complete(_: object) -> bool:
                keys = {window_key(d) for _, d in aggregates.decoded() if d["device_id"] in devices}
                return set(want) <= keys  # the last ones once the partitions are quiet

            await aggregates.poll_until(complete, timeout_s=90)
            by_id: dict[str, dict[str, object]] = {}
            for headers, data in aggregates.decoded():
                if data["device_id"] in devices:
                    # A replayed window is identical to the one computed from every reading.
                    assert_windows_equal(data, want[window_key(data)])
                    by_id[headers["ce_id"]] = data
            assert {window_key(d) for d in by_id.values()} == set(want)
            # The new owner read the device clocks again from the checkpoints' scan offsets.
            assert "device clocks read again" in (tmp_path / "telemetry.log").read_text()
            assert len(by_id) == len(want)
            await late_reader.poll_until(
                lambda recs: {r.key for r in recs} >= {g.encode() for g in gateways},
                timeout_s=30,
            )
            ts = now - 50_000 + 10
            missed = [str(ts - ts % size).encode() for size in SIZES]
            for record in late_reader.records:
                data = orjson.loads(record.value)
                if data["device_id"] in gateways:
                    assert data["readings"] == [
                        {"metric": "temp", "ts": ts, "value": -1.0, "quality": "good"}
                    ]
                    assert [v for k, v in record.headers if k == "late_window_start"] == missed
                    assert ("late_source_topic", READINGS.encode()) in record.headers
    finally:
        service.kill()
