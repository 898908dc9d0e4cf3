"""Profile the real Aggregator in process on the seeded workload, without Kafka.

``python -m bench.telemetry.profile_aggregator [readings] [per_message] [--profile]``: fakes
stand in for the consumer and producer (send returns a completed future), so what is measured
is Millrace's own per-reading cost: decode, windows, emits, metrics.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.producer.message_accumulator import BatchBuilder
from pyinstrument import Profiler

from bench.telemetry.workload import Workload, messages
from services.telemetry.aggregator import Aggregator
from services.telemetry.settings import TelemetrySettings

TOPIC = "telemetry.readings.v1"


class FakeProducer:
    def __init__(self) -> None:
        self.sent = 0

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> asyncio.Future[Any]:
        self.sent += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def create_batch(self) -> Any:
        return BatchBuilder(256 * 1024, 0, is_transactional=0)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3}

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[Any]:
        self.sent += batch.record_count()
        batch.close()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class FakeCoordinator:
    async def fetch_committed_offsets(self, tps: Any) -> dict[Any, Any]:
        return {}


class FakeConsumer:
    def __init__(self) -> None:
        self._coordinator = FakeCoordinator()
        self.commits = 0

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in range(4)}

    async def commit(self, offsets: Any) -> None:
        self.commits += 1


def batches(w: Workload, per_poll: int) -> list[dict[TopicPartition, list[ConsumerRecord]]]:
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


async def run(w: Workload) -> float:
    settings = TelemetrySettings(kafka_bootstrap="127.0.0.1:9")
    agg = Aggregator(settings, FakeConsumer(), FakeProducer())
    polls = batches(w, settings.telemetry_max_poll_records)
    # As Aggregator.run() does at its start (and the pre-built polls are held for the whole
    # run, unlike a consumer's): full collections must not walk them.
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for poll in polls:
        await agg.process(poll)
        await agg.commit()
    return time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400_000
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    w = Workload("profile", n, devices=10_000, metrics=5, per_message=per)
    if "--profile" in sys.argv:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        elapsed = asyncio.run(run(w))
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    else:
        elapsed = asyncio.run(run(w))
    print(f"{n} readings, {per}/message: {elapsed:.2f} s, {n / elapsed:,.0f} readings/s")


if __name__ == "__main__":
    main()
