"""The idle clock of a device on a real broker: a device that stops while another keeps its
partition busy has its windows closed by the log clock (the records' Kafka timestamps) within
about the idle time plus the lateness after they end, not when the backfill horizon passes
them; a reading it sends later for a window so closed reaches ``telemetry.readings.v1.late``."""

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


def _body(device: str, readings: list[tuple[int, float]]) -> bytes:
    return orjson.dumps(
        {
            "device_id": device,
            "readings": [{"metric": "temp", "ts": ts, "value": v} for ts, v in readings],
        }
    )


async def test_a_device_quiet_in_a_busy_partition_has_its_windows_closed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    service = await start_telemetry(
        kafka_bootstrap,
        tmp_path / "telemetry.log",
        # The live device keeps the partition busy (a record every 100 ms): the partition's
        # idle close by the wall clock never comes, only the quiet device's own idle clock.
        {"MILLRACE_TELEMETRY_DEVICE_IDLE_CLOSE_MS": "1000"},
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        agg_start = await end_offsets(kafka_bootstrap, AGGREGATES)
        late_start = await end_offsets(kafka_bootstrap, LATE)
        run = uuid.uuid4().hex[:6]
        quiet, live = f"quiet-{run}", f"live-{run}"
        now = time.time_ns() // 1_000_000
        sent = [(now + k * 100, float(k)) for k in range(15)]
        # Both on one partition: the live device's records move its log clock.
        await producer.send_and_wait(READINGS, _body(quiet, sent), key=quiet.encode(), partition=0)
        want = expected_windows([(quiet, "temp", ts, v) for ts, v in sent], SIZES)

        async def keep_busy() -> None:
            for k in range(150):  # 15 s, every 100 ms
                ts = time.time_ns() // 1_000_000
                body = _body(live, [(ts, float(k))])
                await producer.send_and_wait(READINGS, body, key=live.encode(), partition=0)
                await asyncio.sleep(0.1)

        busy = asyncio.ensure_future(keep_busy())
        async with (
            TopicReader(kafka_bootstrap, agg_start) as aggregates,
            TopicReader(kafka_bootstrap, late_start) as late_reader,
        ):

            def closed(_: object) -> bool:
                keys = {window_key(d) for _, d in aggregates.decoded() if d["device_id"] == quiet}
                return set(want) <= keys

            await aggregates.poll_until(closed, timeout_s=12)
            # Closed while the partition was still busy: by the device's idle clock.
            assert not busy.done()
            got = {window_key(d): d for _, d in aggregates.decoded() if d["device_id"] == quiet}
            assert set(got) == set(want)
            for key, data in got.items():
                assert_windows_equal(data, want[key])
            # The device comes back with a reading of its first window, closed: late.
            ts = now + 10
            await producer.send_and_wait(
                READINGS, _body(quiet, [(ts, -1.0)]), key=quiet.encode(), partition=0
            )
            await late_reader.poll_until(
                lambda recs: any(r.key == quiet.encode() for r in recs), timeout_s=15
            )
            record = next(r for r in late_reader.records if r.key == quiet.encode())
            missed = [str(ts - ts % size).encode() for size in SIZES]
            assert [v for k, v in record.headers if k == "late_window_start"] == missed
        busy.cancel()
    finally:
        await producer.stop()
        service.kill()
