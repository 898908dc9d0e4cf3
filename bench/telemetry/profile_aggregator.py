"""Profile the real Aggregator in process on the seeded workload, without Kafka.

``python -m bench.telemetry.profile_aggregator [readings] [per_message] [--profile] [--sparse]``:
fakes stand in for the consumer and producer (send returns a completed future), so what is measured
is Millrace's own per-reading cost: decode, windows, emits, metrics. Without ``--profile`` it
also times the hot-path decoder alone over the same polls, in alternating rounds: that is the
ceiling's share of the work without Kafka, and the ratio of the two says how much of Millrace's
time the ceiling shares with it (docs/perf-log/telemetry-hot-path.md, seventh round).

``--sparse`` runs the sparse workload of ``backfill.py`` instead (one reading per series per
window, 5,000 devices: as many windows leave as readings arrive), ``readings`` of it, one per
message whatever ``per_message``; its polls are full, so the aggregator catches up as it does
on a backlog.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from pyinstrument import Profiler

from bench.telemetry.backfill import workloads
from bench.telemetry.workload import Workload, messages
from services.telemetry.aggregator.collector import tune_gc
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.decode_fast import decode_readings_fast
from services.telemetry.settings import TelemetrySettings

TOPIC = "telemetry.readings.v1"
Polls = list[dict[TopicPartition, list[ConsumerRecord]]]


class FakeProducer:
    def __init__(self) -> None:
        self.sent = 0

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[Any]:
        self.sent += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        self.sent += batch.record_count()
        batch.close()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


async def nothing_committed(
    consumer: Any, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's commits as ``Aggregator(fetch_committed=...)`` reads them: none yet, every
    partition starts empty."""
    return {}


class FakeConsumer:
    def __init__(self) -> None:
        self.commits = 0

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in range(4)}

    async def commit(self, offsets: Any) -> None:
        self.commits += 1


def batches(w: Workload, per_poll: int) -> Polls:
    parts: list[list[ConsumerRecord]] = [[] for _ in range(w.partitions)]
    for key, value in messages(w):
        p = hash(key) % w.partitions
        offset = len(parts[p])
        rec = ConsumerRecord(TOPIC, p, offset, 0, 0, key, value, None, len(key), len(value), ())
        parts[p].append(rec)
    polls = []
    cursor = [0] * w.partitions
    while any(cursor[p] < len(parts[p]) for p in range(w.partitions)):
        poll = {}
        for p in range(w.partitions):
            chunk = parts[p][cursor[p] : cursor[p] + per_poll // w.partitions]
            cursor[p] += len(chunk)
            if chunk:
                poll[TopicPartition(TOPIC, p)] = chunk
        polls.append(poll)
    return polls


async def run(settings: TelemetrySettings, polls: Polls) -> float:
    """The aggregator over ``polls``, committing at the service's interval."""
    agg = Aggregator(settings, FakeConsumer(), FakeProducer(), fetch_committed=nothing_committed)
    interval = settings.telemetry_commit_interval_ms / 1000
    start = last_commit = time.perf_counter()
    for poll in polls:
        await agg.process(poll)
        if time.perf_counter() - last_commit >= interval:
            await agg.commit()
            last_commit = time.perf_counter()
    await agg.commit()
    return time.perf_counter() - start


def decode_only(settings: TelemetrySettings, polls: Polls) -> float:
    """The benchmark's ceiling without Kafka: the hot-path decoder over ``polls``, nothing else."""
    skew = settings.telemetry_max_future_skew_ms
    start = time.perf_counter()
    now = time.time_ns() // 1_000_000
    for poll in polls:
        for records in poll.values():
            for r in records:
                decode_readings_fast(r.value, r.key, now, skew)
    return time.perf_counter() - start


def main() -> None:
    """``[readings] [per_message] [--profile] [--sparse] [--rounds=N]``: without
    ``--profile``, N rounds (default 3) each time the decoder alone (the ceiling's own work) and
    then the aggregator over the same polls in this process, and print the medians per reading
    and their ratio."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 400_000
    per = int(args[1]) if len(args) > 1 else 1
    rounds = next((int(a[9:]) for a in sys.argv if a.startswith("--rounds=")), 3)
    if "--sparse" in sys.argv:
        w = replace(workloads()[2], readings=n)
        per = w.per_message
    else:
        w = Workload("profile", n, devices=10_000, metrics=5, per_message=per)
    settings = TelemetrySettings(kafka_bootstrap="127.0.0.1:9")
    polls = batches(w, settings.telemetry_max_poll_records)
    # As Aggregator.run() does at its start; the pre-built polls are held for the whole run
    # (unlike a consumer's), so full collections must not walk them.
    tune_gc()
    if "--profile" in sys.argv:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        elapsed = asyncio.run(run(settings, polls))
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
        print(f"{n} readings, {per}/message: {elapsed:.2f} s, {n / elapsed:,.0f} readings/s")
        return
    decoder, aggregator = [], []
    for _ in range(rounds):
        decoder.append(decode_only(settings, polls))
        aggregator.append(asyncio.run(run(settings, polls)))
    d, a = statistics.median(decoder), statistics.median(aggregator)
    print(
        f"{n} readings, {per}/message, median of {rounds} rounds: decoder alone "
        f"{1e6 * d / n:.2f} us/reading, aggregator {1e6 * a / n:.2f} us/reading "
        f"({n / a:,.0f} readings/s, {a / d:.2f}x the decoder's time)"
    )


if __name__ == "__main__":
    main()
