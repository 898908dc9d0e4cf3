"""The hot-path window encoding equals the envelope's own (same ce_id, same headers), and the
record it encodes ahead holds the key, the value and those headers."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from contracts.envelope import CloudEvent, derived_id, rfc3339_from_millis
from contracts.telemetry import WindowAggregate
from services.telemetry.emit import _SCHEMA, _SOURCE, _TYPE, window_event_id, window_record
from services.telemetry.kafka.record_batch import decoded_record
from services.telemetry.windows.model import ClosedWindow


@st.composite
def windows(draw: st.DrawFn) -> ClosedWindow:
    start = draw(st.integers(0, 253_402_300_700_000))
    size = draw(st.sampled_from([1000, 10_000, 60_000]))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    return ClosedWindow(
        device_id=draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}\Z")),
        metric=draw(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}\Z")),
        window_start=start,
        window_end=start + size,
        count=draw(st.integers(1, 10)),
        min=draw(finite),
        max=draw(finite),
        mean=draw(finite),
        stddev=draw(st.floats(min_value=0, allow_nan=False, allow_infinity=False)),
        last=draw(finite),
    )


@given(windows())
def test_ids_and_headers_equal_the_envelope(w: ClosedWindow) -> None:
    expected_id = derived_id("window", w.device_id, w.metric, w.size_ms, w.window_start)
    assert window_event_id(w) == expected_id
    record = window_record(w)
    key, value, headers = decoded_record(record.record)
    event = CloudEvent(
        id=expected_id,
        source=_SOURCE,
        type=_TYPE,
        subject=w.device_id,
        time=rfc3339_from_millis(w.window_end),
        dataschema=_SCHEMA,
    )
    assert key == record.key == w.device_id.encode()
    assert headers == event.headers()
    assert value is not None
    assert orjson.loads(value) == {
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
    # The contract's fields in the contract's order, and valid under the contract model.
    assert list(orjson.loads(value)) == list(WindowAggregate.model_fields)
    assert WindowAggregate.model_validate_json(value).model_dump() == orjson.loads(value)
    assert (record.size_ms, record.window_end) == (w.size_ms, w.window_end)
