"""Late readings -> ``telemetry.readings.v1.late``: nothing a device sends is silently lost.

A reading whose window its device's clock has already closed (emitted, or closed before it
ever held a reading) is left out of the aggregates. The readings of one input record that were
late go out as one ``ReadingsBatch`` record, keyed by the device, with headers naming every
window they missed (``late_window_size_ms``, ``late_window_start``, ``late_window_ce_id``, one
of each per window, in the same order) and the input record (``late_source_*``). Everything in
it is a function of the input record and the clocks, which a replay rebuilds, so a replay sends
the same record again (docs/decisions/0012-late-readings.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from contracts.envelope import derived_id
from services.telemetry.windows.model import ReadingLike

LATE_TOPIC = "telemetry.readings.v1.late"
_encoder = msgspec.json.Encoder()


def missed_windows(
    late: Sequence[tuple[ReadingLike, int]], sizes_ms: Sequence[int]
) -> list[tuple[str, int, int]]:
    """(metric, size, start) of every window the late readings missed, in the order the
    readings and sizes give them, each once."""
    seen: dict[tuple[str, int, int], None] = {}
    for r, mask in late:
        for i, size in enumerate(sizes_ms):
            if mask >> i & 1:
                seen[(r.metric, size, r.ts - r.ts % size)] = None
    return list(seen)


def late_record(
    device: str,
    late: Sequence[tuple[ReadingLike, int]],
    sizes_ms: Sequence[int],
    source: tuple[str, int, int],
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The (key, value, headers) of the late readings of the record at ``source`` (topic,
    partition, offset)."""
    value = _encoder.encode(
        {
            "device_id": device,
            "readings": [
                {"metric": r.metric, "ts": r.ts, "value": r.value, "quality": str(r.quality)}
                for r, _ in late
            ],
        }
    )
    topic, partition, offset = source
    headers = [
        ("late_source_topic", topic.encode()),
        ("late_source_partition", str(partition).encode()),
        ("late_source_offset", str(offset).encode()),
    ]
    for metric, size, start in missed_windows(late, sizes_ms):
        headers += [
            ("late_window_metric", metric.encode()),
            ("late_window_size_ms", str(size).encode()),
            ("late_window_start", str(start).encode()),
            ("late_window_ce_id", derived_id("window", device, metric, size, start).encode()),
        ]
    return device.encode(), value, headers
