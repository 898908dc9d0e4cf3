"""Quix Streams computing Millrace's windows: same sizes, same lateness (grace), final emission.

Per (device, metric) tumbling windows with the same running statistics (Welford, in the same
order) as ``services/telemetry/windows/stats.py``. Quix windows by message key (the device);
one window per device holds every metric's statistics, which is the same computation without
a repartition topic. Closing is per partition (``closing_strategy="partition"``), like
Millrace's per-partition watermark. Quix keeps its state in RocksDB with changelog topics
(its defaults), as a plant engineer would run it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quixstreams import Application

Stats = list[Any]  # count, mean, m2, min, max, last_ts, last


def _add(agg: dict[str, Stats], r: dict[str, Any]) -> dict[str, Stats]:
    value = float(r["value"])
    s = agg.get(r["metric"])
    if s is None:
        s = agg[r["metric"]] = [0, 0.0, 0.0, value, value, -1, 0.0]
    s[0] += 1
    delta = value - s[1]
    s[1] += delta / s[0]
    s[2] += delta * (value - s[1])
    s[3] = min(s[3], value)
    s[4] = max(s[4], value)
    if r["ts"] >= s[5]:
        s[5] = r["ts"]
        s[6] = value
    return agg


def _results(size: int) -> Callable[[dict[str, Any], Any, int, Any], list[dict[str, Any]]]:
    def expand(window: dict[str, Any], key: Any, ts: int, headers: Any) -> list[dict[str, Any]]:
        return [
            {
                "device_id": key,
                "metric": metric,
                "size_ms": size,
                "window_start": window["start"],
                "window_end": window["end"],
                "count": s[0],
                "min": s[3],
                "max": s[4],
                "mean": s[1],
                "stddev": math.sqrt(s[2] / s[0]),
                "last": s[6],
            }
            for metric, s in window["value"].items()
        ]

    return expand


def build(
    bootstrap: str,
    group: str,
    topic: str,
    out_topic: str,
    sizes_ms: tuple[int, ...],
    lateness_ms: int,
    state_dir: Path,
    on_first: Callable[[], None],
    commit_interval_s: float,
) -> Application:
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=commit_interval_s,
        state_dir=str(state_dir),
        loglevel="WARNING",
    )
    source = app.topic(topic, value_deserializer="json", key_deserializer="str")
    sink = app.topic(out_topic, value_serializer="json", key_serializer="str")
    first: list[bool] = []

    def mark(value: Any) -> None:
        if not first:
            first.append(True)
            on_first()

    sdf = app.dataframe(source)
    sdf = sdf.update(mark)
    sdf = sdf.apply(lambda v: v["readings"], expand=True)
    sdf = sdf.filter(lambda r: r.get("quality", "good") != "bad")
    sdf = sdf.set_timestamp(lambda r, key, ts, headers: r["ts"])
    for size in sizes_ms:
        windows = (
            sdf.tumbling_window(size, grace_ms=lateness_ms, name=f"w{size}")
            .reduce(_add, lambda r: _add({}, r))
            .final(closing_strategy="partition")
        )
        windows.apply(_results(size), expand=True, metadata=True).to_topic(sink)
    return app
