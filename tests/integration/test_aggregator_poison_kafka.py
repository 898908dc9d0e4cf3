"""On a real broker: records that make a stage of the aggregator raise (decode, the windows,
the alarm rules, encoding a closed window) go to the DLQ with their provenance and the
exception, and the partition moves on: every other window reaches Kafka once and right, and
the committed offset passes them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from conftest import NewTopicFactory
from support.telemetry import (
    TopicReader,
    assert_windows_equal,
    end_offsets,
    expected_windows,
    window_key,
)

from contracts.manifest import TOPICS
from services.telemetry.aggregator import readings, scheduler
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.app import make_aggregator_clients
from services.telemetry.decode_fast import decode_readings_fast
from services.telemetry.emit import AGGREGATES_TOPIC, WindowRecord, window_record
from services.telemetry.engine.monitor import Monitor
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.rules.book import parse_rules
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows
from shared.kafka import ensure_topics
from shared.logging import configure_logging
from shared.settings import ServiceSettings

SIZES = (1000, 5000)
BOOK = parse_rules(
    {"alarms": [{"id": "hot", "severity": "major", "when": {"metric": "t", "above": 90}}]}
)


def _inject(monkeypatch: pytest.MonkeyPatch, run: str) -> None:
    """Faults for this run's devices ``<stage>-<run>``: the decoder raises for ``decode-``'s
    record, the windows for ``windows-``' first reading, the alarm rules for ``alarms-``'
    readings, and the encoder for ``emit-``'s windows. The windows' fault is in the private
    ``PartitionWindows._add`` (a new series' first reading): the public ``add_records()`` takes
    a whole poll, so no public seam fails one record of it."""
    decode, add, observe = decode_readings_fast, PartitionWindows._add, PartitionEngine.observe

    def decode_or_raise(value: bytes | None, *args: Any) -> Any:
        if value and f"decode-{run}".encode() in value:
            raise RuntimeError("injected decode fault")
        return decode(value, *args)

    def add_or_raise(self: PartitionWindows, series: Any, key: tuple[str, str], *a: Any) -> int:
        if key[0] == f"windows-{run}":
            raise RuntimeError("injected windows fault")
        return add(self, series, key, *a)

    def observe_or_raise(self: PartitionEngine, device: str, *args: Any) -> None:
        if device == f"alarms-{run}":
            raise RuntimeError("injected alarms fault")
        observe(self, device, *args)

    def make_or_raise(w: ClosedWindow) -> WindowRecord:
        if w.device_id == f"emit-{run}":
            raise ValueError("injected emit fault")
        return window_record(w)

    monkeypatch.setattr(readings, "decode_readings_fast", decode_or_raise)
    monkeypatch.setattr(PartitionWindows, "_add", add_or_raise)
    monkeypatch.setattr(PartitionEngine, "observe", observe_or_raise)
    monkeypatch.setattr(scheduler, "window_record", make_or_raise)


async def _create_dlq(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(f"{topic}.dlq", 1, 1)])
    finally:
        await admin.close()


async def _produce(
    bootstrap: str, topic: str, devices: list[str], now: int
) -> tuple[list[tuple[str, str, int, float]], dict[str, int]]:
    """Ten readings of each device, one record each, the devices interleaved, all on one
    partition (key = device); returns the readings and each device's first offset."""
    readings: list[tuple[str, str, int, float]] = []
    first: dict[str, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for i in range(10):
            for device in devices:
                ts, value = now - 4000 + i * 250, 20.0 + i
                data = {
                    "device_id": device,
                    "readings": [{"metric": "t", "ts": ts, "value": value}],
                }
                meta = await producer.send_and_wait(
                    topic, orjson.dumps(data), key=device.encode(), partition=0
                )
                first.setdefault(device, meta.offset)
                readings.append((device, "t", ts, value))
    finally:
        await producer.stop()
    return readings, first


async def _wait_for(check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_failing_records_are_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, new_topic: NewTopicFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("telemetry")  # as the service logs: JSON, stack traces as text
    await ensure_topics(ServiceSettings(kafka_bootstrap=kafka_bootstrap), TOPICS)
    topic = await new_topic(partitions=1)
    await _create_dlq(kafka_bootstrap, topic)
    run = uuid.uuid4().hex[:6]
    good = [f"good-{i}-{run}" for i in range(3)]
    stages = ["decode", "windows", "alarms", "emit"]
    devices = [good[0], *(f"{s}-{run}" for s in stages), *good[1:]]
    agg_start = await end_offsets(kafka_bootstrap, AGGREGATES_TOPIC)
    readings, first = await _produce(kafka_bootstrap, topic, devices, time.time_ns() // 1_000_000)
    _inject(monkeypatch, run)
    emit_windows = len(expected_windows([r for r in readings if r[0] == f"emit-{run}"], SIZES))

    settings = TelemetrySettings(
        kafka_bootstrap=kafka_bootstrap,
        telemetry_windows="1s,5s",
        telemetry_allowed_lateness_ms=500,
        telemetry_idle_close_ms=500,
        telemetry_commit_interval_ms=100,
        telemetry_consumer_group=f"it-poison-{run}",
    )
    clients = make_aggregator_clients(settings)
    await clients.start()
    agg = Aggregator(
        settings, clients.consumer, clients.producer, Monitor(BOOK, 500), clients.events
    )
    agg.readings_topic = topic
    stop = asyncio.Event()
    task = asyncio.create_task(agg.run(stop))
    try:
        async with TopicReader(kafka_bootstrap, {TopicPartition(f"{topic}.dlq", 0): 0}) as dlq:
            # decode, windows and alarms: each record of the device; emit: each of its windows
            await dlq.poll_until(lambda records: len(records) >= 30 + emit_windows, 60)
            await asyncio.sleep(1)  # room for a duplicate to show
            await dlq.poll_until(lambda _: True, timeout_s=1)
            dead = dlq.records
        # Aggregates of every device but the three whose windows fail (alarms' are good).
        aggregated = [*good, f"alarms-{run}"]
        want = expected_windows([r for r in readings if r[0] in aggregated], SIZES)
        async with TopicReader(kafka_bootstrap, agg_start) as aggregates:

            def mine() -> list[dict[str, Any]]:
                return [d for _, d in aggregates.decoded() if d["device_id"].endswith(run)]

            await aggregates.poll_until(lambda _: len(mine()) >= len(want), timeout_s=60)
            await asyncio.sleep(1.5)  # room for a duplicate to show
            await aggregates.poll_until(lambda _: True, timeout_s=1)
            got = mine()
        await _wait_for(lambda: agg.partitions[TopicPartition(topic, 0)].next_offset >= 70, 30)
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        if task.done() and task.exception() is not None:
            raise AssertionError("the aggregator failed") from task.exception()
        stop.set()
        if not task.done():
            task.cancel()
        await clients.stop()

    assert Counter(window_key(d) for d in got) == Counter(dict.fromkeys(want, 1))
    for data in got:
        assert_windows_equal(data, want[window_key(data)])

    by_stage: dict[str, list[dict[str, str]]] = {}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["dlq_reason"] == "processing_error"
        assert headers["dlq_source_topic"] == topic
        assert headers["dlq_source_partition"] == "0"
        by_stage.setdefault(headers["dlq_error"].split(":")[0], []).append(headers)
        if headers["dlq_error"].startswith("emit"):
            assert record.value is None
            assert record.key == f"emit-{run}".encode()
        else:  # a copy of the record
            assert orjson.loads(record.value)["device_id"] == record.key.decode()
    assert {stage: len(found) for stage, found in by_stage.items()} == {
        "decode": 10,
        "windows": 10,
        "alarms": 10,
        "emit": emit_windows,
    }
    windows_of_emit = {h["dlq_error"].split(": ")[1] for h in by_stage["emit"]}
    assert len(windows_of_emit) == len(by_stage["emit"])  # each failed window once
    assert all(int(h["dlq_source_offset"]) >= first[f"emit-{run}"] for h in by_stage["emit"])
    assert by_stage["decode"][0]["dlq_error"] == "decode: RuntimeError: injected decode fault"

    # The group's committed offset passed every poisoned record.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=settings.telemetry_group
    )
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert committed == 70
