"""Nothing silently lost: a reading whose window its device already emitted goes to
``telemetry.readings.v1.late`` with headers naming the window it missed, and one device's
backlog behind another device's newer readings is aggregated (event time per device)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from support.aggregator import Committed, nothing_committed

from contracts.telemetry import ReadingsBatch
from services.telemetry.aggregator.late import LATE_TOPIC, late_record, missed_windows
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.decode_fast import FastReading
from services.telemetry.emit import window_event_id
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.clocks import Checkpoint
from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows

TOPIC = "telemetry.readings.v1"
TP = TopicPartition(TOPIC, 0)
T0 = 1_700_000_000_000


def test_a_late_record_names_the_windows_it_missed_and_keeps_the_contract() -> None:
    late = [(FastReading("t", T0 + 12_000, 2.5), 0b01), (FastReading("p", T0 + 3_000, 1), 0b11)]
    assert missed_windows(late, (10_000, 60_000)) == [
        ("t", 10_000, T0 + 10_000),
        ("p", 10_000, T0),
        ("p", 60_000, T0 - T0 % 60_000),
    ]
    key, value, headers = late_record("press-1", late, (10_000, 60_000), (TOPIC, 3, 42))
    assert key == b"press-1"
    batch = ReadingsBatch.model_validate_json(value)
    assert [(r.metric, r.ts, r.value) for r in batch.readings] == [
        ("t", T0 + 12_000, 2.5),
        ("p", T0 + 3_000, 1),
    ]
    names = [k for k, _ in headers]
    assert names[:3] == ["late_source_topic", "late_source_partition", "late_source_offset"]
    assert [v for k, v in headers if k == "late_source_offset"] == [b"42"]
    assert names.count("late_window_ce_id") == 3
    ids = [v.decode() for k, v in headers if k == "late_window_ce_id"]
    window = ClosedWindow("press-1", "t", T0 + 10_000, T0 + 20_000, 1, 0, 0, 0, 0, 0)
    assert ids[0] == window_event_id(window)  # the id of the aggregate it missed


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        self.batched = 0

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, headers))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[None]:
        self.batched += batch.record_count()
        batch.close()
        return await self.send(topic, b"", b"", [])


class Consumer:
    def __init__(self) -> None:
        self.commits: list[Any] = []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(offsets)

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TP}


def _record(offset: int, device: str, ts: int) -> ConsumerRecord[bytes, bytes]:
    value = orjson.dumps({"device_id": device, "readings": [{"metric": "t", "ts": ts, "value": 1}]})
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, device.encode(), value, None, 7, 0, ())


async def test_a_backlog_is_aggregated_and_a_reading_after_its_window_goes_to_the_late_topic() -> (
    None
):
    out = Producer()
    agg = Aggregator(
        TelemetrySettings(kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"),
        cast(AIOKafkaConsumer, Consumer()),
        cast(AIOKafkaProducer, out),
        fetch_committed=nothing_committed,
    )
    live = [_record(i, "live", T0 + 60_000 + i * 1000) for i in range(20)]
    # A gateway's last minute, after the live device's newer readings: on its own clock.
    backlog = [_record(20 + i, "gw", T0 + i * 1000) for i in range(60)]
    # Then a reading of the gateway's first window, which its own clock has closed.
    late = [_record(80, "gw", T0 + 500)]
    await agg.process({TP: live + backlog + late})
    await agg.commit()
    windows = agg.partitions[TP].windows
    assert isinstance(windows, DeviceWindows)
    late_sent = [s for s in out.sent if s[0] == LATE_TOPIC]
    assert len(late_sent) == 1
    _, key, value, headers = late_sent[0]
    assert key == b"gw"
    assert orjson.loads(value)["readings"][0]["ts"] == T0 + 500
    assert (("late_window_start", str(T0).encode())) in headers
    assert ("late_source_offset", b"80") in headers
    # The gateway's 10 s windows up to its clock less the lateness were all emitted: 5 x 10.
    assert out.batched >= 5
    [(offsets)] = agg.consumer.commits
    checkpoint = Checkpoint.decode(offsets[TP][1])
    assert checkpoint is not None
    assert checkpoint.at == 81
    assert windows.clock("gw") == T0 + 59_000
    assert windows.clock("live") == T0 + 79_000


async def test_a_record_the_device_windows_raise_for_is_dead_lettered_and_the_rest_added(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fault is in the private PartitionWindows._add (a new series' first reading, which
    # DeviceWindows.add_records calls per record): the public add_records() takes a whole poll,
    # so no public seam fails one record of it.
    add = PartitionWindows._add

    def add_or_raise(self: PartitionWindows, series: Any, key: tuple[str, str], *a: Any) -> int:
        if key[0] == "bad":
            raise RuntimeError("injected fault")
        return add(self, series, key, *a)

    monkeypatch.setattr(PartitionWindows, "_add", add_or_raise)
    out = Producer()
    agg = Aggregator(
        TelemetrySettings(kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"),
        cast(AIOKafkaConsumer, Consumer()),
        cast(AIOKafkaProducer, out),
        fetch_committed=nothing_committed,
    )
    records = [_record(i, "gw", T0 + i * 1000) for i in range(5)]
    records += [
        _record(5, "bad", T0),
        *(_record(6 + i, "gw", T0 + (5 + i) * 1000) for i in range(15)),
    ]
    await agg.process({TP: records})
    await agg.commit()
    assert [s[0] for s in out.sent].count("telemetry.readings.v1.dlq") == 1
    windows = agg.partitions[TP].windows
    assert isinstance(windows, DeviceWindows)
    assert windows.clock("gw") == T0 + 19_000  # every good record after the bad one added
    assert out.batched >= 1  # gw's first 10 s window closed on its own clock and was emitted


async def test_a_replay_commits_nothing_below_the_commit_it_restored() -> None:
    """Replaying below the restored commit point, the clocks are those of that point: a
    checkpoint there would claim them too early, so the restored commit stands until the
    replay has passed it."""
    restored = Checkpoint(T0 + 9_000, at=10, scan=10, log_time=0, scan_log_time=-1, woken=0)
    consumer = Consumer()
    agg = Aggregator(
        TelemetrySettings(kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, Producer()),
        fetch_committed=Committed({TP: (5, restored.encode())}),
    )
    await agg.process({TP: [_record(i, "d", T0 + i * 1000) for i in range(5, 8)]})
    await agg.commit()
    assert consumer.commits == []
    await agg.process({TP: [_record(i, "d", T0 + i * 1000) for i in range(8, 12)]})
    await agg.commit()
    [offsets] = consumer.commits
    checkpoint = Checkpoint.decode(offsets[TP][1])
    assert checkpoint is not None
    assert checkpoint.at == 12
