"""Read back what the systems wrote: windows (Millrace aggregates, Quix output) and alarms."""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

WindowKey = tuple[str, str, int, int]
Stats = tuple[int, float, float, float, float, float]


def read_all(bootstrap: str, topic: str, start: dict[int, int]) -> list[Any]:
    """Every record of ``topic`` from ``start`` (per partition) to the current end."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta}
        todo = {p: end for p, end in ends.items() if end > start.get(p, 0)}
        c.assign([TopicPartition(topic, p, start.get(p, 0)) for p in todo])
        out: list[Any] = []
        deadline = time.monotonic() + 120
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: still missing partitions {sorted(todo)}")
            for msg in c.consume(10_000, timeout=1.0):
                if msg.error():
                    continue
                out.append(msg)
                offset, partition = msg.offset(), msg.partition()
                if offset is not None and offset + 1 >= todo.get(partition, math.inf):
                    todo.pop(partition, None)
        return out
    finally:
        c.close()


def end_offsets_of(bootstrap: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader"})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta}
    finally:
        c.close()


def windows_of(messages: list[Any], skip_prefix: str) -> dict[WindowKey, Stats]:
    """Millrace aggregates and Quix output rows, in one shape, keyed by window."""
    out: dict[WindowKey, Stats] = {}
    for msg in messages:
        w = orjson.loads(msg.value())
        if w["device_id"].startswith(skip_prefix):
            continue
        size = w.get("size_ms", w["window_end"] - w["window_start"])
        key = (w["device_id"], w["metric"], size, w["window_start"])
        out[key] = (w["count"], w["min"], w["max"], w["mean"], w["stddev"], w["last"])
    return out
