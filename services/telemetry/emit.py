"""ClosedWindow -> ``telemetry.aggregates.v1`` record, with a deterministic CloudEvent id."""

from __future__ import annotations

import orjson

from contracts.envelope import (
    CloudEvent,
    ce_type_for,
    derived_id,
    rfc3339_from_millis,
    schema_id_for,
)
from services.telemetry.domain.windows import ClosedWindow

AGGREGATES_TOPIC = "telemetry.aggregates.v1"
_SOURCE = "/millrace/telemetry"
_TYPE = ce_type_for(AGGREGATES_TOPIC)
_SCHEMA = schema_id_for(AGGREGATES_TOPIC)


def window_event_id(w: ClosedWindow) -> str:
    """Derived from (device_id, metric, window size, window_start): a replay yields the same id."""
    return derived_id("window", w.device_id, w.metric, w.size_ms, w.window_start)


def encode_window(w: ClosedWindow) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of one aggregate record."""
    value = orjson.dumps(
        {
            "device_id": w.device_id,
            "metric": w.metric,
            "window_start": w.window_start,
            "window_end": w.window_end,
            "count": w.count,
            "min": w.min,
            "max": w.max,
            "mean": w.mean,
            "stddev": w.stddev,
            "last": w.last,
        }
    )
    event = CloudEvent(
        id=window_event_id(w),
        source=_SOURCE,
        type=_TYPE,
        subject=w.device_id,
        time=rfc3339_from_millis(w.window_end),
        dataschema=_SCHEMA,
    )
    return w.device_id.encode(), value, event.headers()
