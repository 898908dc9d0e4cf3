"""The seeded telemetry workload every system in the benchmark consumes.

Plant-like: ``devices`` machines each sample ``metrics`` signals once per second of event time;
a small seeded share of readings arrives out of order (within the lateness) or too late (beyond
it). Event time lies in the past (before the future-skew limit). After the data, each partition
gets one *marker* reading far ahead in event time (further than Millrace's backfill horizon), so
every data window closes in every system without waiting for wall-clock idle closing; a run is
complete when a group's committed offsets reach the marker offsets.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import orjson

Reading = dict[str, object]
MARKER_DEVICE = "zz-marker"
MARKER_AHEAD_MS = 1_200_000


@dataclass(frozen=True)
class Workload:
    name: str
    readings: int
    devices: int
    metrics: int
    per_message: int
    partitions: int = 4
    seed: int = 7
    base_ts: int = 1_700_000_000_000
    late_share: float = 0.001
    disorder_share: float = 0.01
    # Event time between a device's samples (sparse: one reading per series per 10 s window).
    interval_ms: int = 1000
    # A backfill: each device sends its whole history before the next one starts (gateways
    # uploading after an outage), instead of all devices second by second (live).
    by_device: bool = False

    def describe(self) -> dict[str, object]:
        return asdict(self)

    @property
    def messages(self) -> int:
        return -(-self.readings // self.per_message)


def readings(w: Workload) -> Iterator[tuple[str, Reading]]:
    """(device_id, reading) in send order: second by second, device by device; with more
    readings per message than metrics, each device sends the seconds one message spans
    together (a gateway that buffers 2 s sends 10 readings of 5 metrics at once)."""
    rng = random.Random(w.seed)
    span = max(1, w.per_message // w.metrics)  # seconds of one device in one message
    per_device = w.metrics * span
    per_block = w.devices * per_device
    seconds = -(-w.readings // (w.devices * w.metrics))
    for i in range(w.readings):
        if w.by_device:
            device, rest = divmod(i, seconds * w.metrics)
            second, metric = divmod(rest, w.metrics)
        else:
            block, rest = divmod(i, per_block)
            device, rest = divmod(rest, per_device)
            in_block, metric = divmod(rest, w.metrics)
            second = block * span + in_block
        ts = w.base_ts + second * w.interval_ms + device % 1000
        roll = rng.random()
        if roll < w.late_share:
            ts -= 30_000  # beyond the allowed lateness: counted, never mixed in
        elif roll < w.late_share + w.disorder_share:
            ts -= rng.randrange(1, 3000)  # out of order, within the lateness
        value = round(50 + 20 * rng.random() + device % 7, 3)
        yield f"dev-{device:05d}", {"metric": f"m{metric}", "ts": ts, "value": value}


def messages(w: Workload) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) records of ``telemetry.readings.v1``; a device's batch never mixes devices."""
    batch: list[Reading] = []
    current = ""
    for device, r in readings(w):
        if batch and (device != current or len(batch) == w.per_message):
            yield current.encode(), orjson.dumps({"device_id": current, "readings": batch})
            batch = []
        current = device
        batch.append(r)
    if batch:
        yield current.encode(), orjson.dumps({"device_id": current, "readings": batch})


def last_ts(w: Workload) -> int:
    seconds = -(-w.readings // (w.devices * w.metrics))
    return w.base_ts + seconds * w.interval_ms + 1000


def marker(w: Workload, partition: int) -> tuple[bytes, bytes]:
    """A reading twenty minutes of event time after the data, for one partition: further than
    Millrace's backfill horizon (15 min), past which the partition closes every device's
    windows, so they close at the marker there too."""
    device = f"{MARKER_DEVICE}-{partition}"
    reading = {"metric": "m", "ts": last_ts(w) + MARKER_AHEAD_MS, "value": 0}
    body = {"device_id": device, "readings": [reading]}
    return device.encode(), orjson.dumps(body)
