"""RSS of the aggregator holding 100 k devices x 10 metrics of open windows.

Runs the real ``Aggregator.process`` (fake Kafka clients, as in ``profile_aggregator``) over one
reading per (device, metric), all in one window of every size, so that every window stays
open; reports the process RSS before and after, in MiB.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

import orjson
import psutil
from aiokafka import ConsumerRecord, TopicPartition

from bench.telemetry.profile_aggregator import (
    TOPIC,
    FakeConsumer,
    FakeProducer,
    nothing_committed,
)
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.settings import TelemetrySettings

BASE_TS = 1_700_000_000_000


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss / 2**20)


async def fill(devices: int, metrics: int, partitions: int = 4) -> tuple[Aggregator, int]:
    settings = TelemetrySettings(kafka_bootstrap="127.0.0.1:9")
    agg = Aggregator(settings, FakeConsumer(), FakeProducer(), fetch_committed=nothing_committed)
    offsets = [0] * partitions
    chunk: dict[TopicPartition, list[ConsumerRecord]] = {}
    for d in range(devices):
        device = f"dev-{d:06d}"
        p = d % partitions
        body = {
            "device_id": device,
            "readings": [
                {"metric": f"metric_{j:02d}", "ts": BASE_TS + j, "value": d * 0.5 + j}
                for j in range(metrics)
            ],
        }
        value = orjson.dumps(body)
        key = device.encode()
        rec = ConsumerRecord(TOPIC, p, offsets[p], 0, 0, key, value, None, len(key), len(value), ())
        offsets[p] += 1
        chunk.setdefault(TopicPartition(TOPIC, p), []).append(rec)
        if d % 5_000 == 4_999:
            await agg.process(chunk)
            chunk = {}
    if chunk:
        await agg.process(chunk)
    return agg, sum(p.windows.open_count for p in agg.partitions.values())


def main() -> None:
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    metrics = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    gc.collect()
    before = rss_mib()
    agg, open_windows = asyncio.run(fill(devices, metrics))
    gc.collect()
    after = rss_mib()
    print(
        json.dumps(
            {
                "devices": devices,
                "metrics": metrics,
                "window_sizes_ms": list(agg.sizes),
                "open_windows": open_windows,
                "rss_mib_before": round(before, 1),
                "rss_mib": round(after, 1),
                "rss_mib_state": round(after - before, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
