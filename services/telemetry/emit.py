"""ClosedWindow -> ``telemetry.aggregates.v1`` record, with a deterministic CloudEvent id."""

from __future__ import annotations

import hashlib

import msgspec

from contracts.envelope import (
    CONTENT_TYPE,
    DERIVED_NAMESPACE,
    SPECVERSION,
    ce_type_for,
    rfc3339_from_millis,
    schema_id_for,
)
from services.telemetry.kafka.record_batch import length_prefixed, varint, varint_of
from services.telemetry.windows.model import ClosedWindow

AGGREGATES_TOPIC = "telemetry.aggregates.v1"
_SOURCE = "/millrace/telemetry"
_TYPE = ce_type_for(AGGREGATES_TOPIC)
_SCHEMA = schema_id_for(AGGREGATES_TOPIC)
_PREFIX = hashlib.sha1(DERIVED_NAMESPACE.bytes + b"window\x1f")  # noqa: S324 (uuid5 is sha1)
# A window record's headers (those of ``CloudEvent.headers``) as the record encodes them, in
# three constant pieces around what differs between windows: ce_id (36 bytes), ce_time and
# ce_subject (the key).
_ID_LENGTH = 36
_HEADERS_TO_ID = (
    varint(8)
    + length_prefixed(b"ce_specversion")
    + length_prefixed(SPECVERSION.encode())
    + length_prefixed(b"ce_id")
    + varint(_ID_LENGTH)
)
_HEADERS_TO_TIME = (
    length_prefixed(b"ce_source")
    + length_prefixed(_SOURCE.encode())
    + length_prefixed(b"ce_type")
    + length_prefixed(_TYPE.encode())
    + length_prefixed(b"ce_time")
)
_HEADER_SUBJECT = length_prefixed(b"ce_subject")
_HEADERS_REST = (
    length_prefixed(b"ce_dataschema")
    + length_prefixed(_SCHEMA.encode())
    + length_prefixed(b"content-type")
    + length_prefixed(CONTENT_TYPE.encode())
)
# ce_time, length-prefixed, per window end.
_TIMES: dict[int, bytes] = {}
# The variant nibble of a uuid keeps its low two bits under a leading 0b10.
_VARIANT = {f"{n:x}": f"{n & 0x3 | 0x8:x}" for n in range(16)}


def window_event_id(w: ClosedWindow) -> str:
    """Derived from (device_id, metric, window size, window_start): a replay yields the same id.

    Equal to ``derived_id("window", ...)`` (uuid5), computed without building UUID objects and
    from a copy of the hash state of the constant prefix, because it runs once per emitted
    window and was half of the encoding cost.
    """
    return _event_id(w.device_id, w.metric, w.size_ms, w.window_start).decode()


def _event_id(device_id: str, metric: str, size_ms: int, window_start: int) -> bytes:
    """:func:`window_event_id` as the record's header holds it (ASCII)."""
    h = _PREFIX.copy()
    h.update(f"{device_id}\x1f{metric}\x1f{size_ms}\x1f{window_start}".encode())
    x = h.hexdigest()
    # uuid5: version nibble 5, variant bits 10 (RFC 4122), set on the hex text directly.
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}".encode()


def _ce_time(window_end: int) -> bytes:
    """Many windows share an end; format (and length-prefix) each end once."""
    text = _TIMES.get(window_end)
    if text is None:
        if len(_TIMES) > 100_000:
            _TIMES.clear()
        text = _TIMES[window_end] = length_prefixed(rfc3339_from_millis(window_end).encode())
    return text


class WindowRecord(msgspec.Struct, gc=False):
    """One aggregate record before it is appended, in an object the garbage collector does not
    track (a boundary's records are made ahead of their close and wait there for seconds; as
    tuples and lists they made full collections walk them). ``record`` is the record's key,
    value and CloudEvents headers encoded as a record batch holds them
    (``record_batch.encoded_record``): the append at the close only puts its length and offset
    in front."""

    key: bytes
    record: bytes
    size_ms: int
    window_end: int


_ENCODE = msgspec.json.Encoder().encode


def window_record(w: ClosedWindow) -> WindowRecord:
    # ClosedWindow's fields are the payload's, in the contract's order.
    value = _ENCODE(w)
    device, start, end = w.device_id, w.window_start, w.window_end
    size = end - start  # ClosedWindow.size_ms, without a Python call per window
    key = device.encode()
    key_length = varint_of(len(key))
    record = b"".join(
        (
            key_length,
            key,
            varint_of(len(value)),
            value,
            _HEADERS_TO_ID,
            _event_id(device, w.metric, size, start),
            _HEADERS_TO_TIME,
            _ce_time(end),
            _HEADER_SUBJECT,
            key_length,
            key,
            _HEADERS_REST,
        )
    )
    return WindowRecord(key, record, size, end)
