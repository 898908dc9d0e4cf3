"""CloudEvents 1.0 binary-mode envelope (contracts/envelope.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts.envelope import (
    CloudEvent,
    EnvelopeError,
    Headers,
    derived_id,
    new_event,
    parse_headers,
    rfc3339,
    rfc3339_from_millis,
    schema_id_for,
)

TOPIC = "telemetry.aggregates.v1"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def event(**overrides: str) -> CloudEvent:
    return new_event(
        topic=TOPIC,
        service="telemetry",
        subject="press-07",
        event_id=derived_id("press-07", "spindle_temp_c", 60_000, 1_732_262_400_000),
        time=datetime(2024, 11, 22, 8, 0, 0, 123_000, tzinfo=UTC),
        **overrides,
    )


def without(headers: Headers, name: str) -> Headers:
    return [(k, v) for k, v in headers if k != name]


def replaced(headers: Headers, name: str, value: bytes) -> Headers:
    return [(k, value if k == name else v) for k, v in headers]


def test_headers_round_trip() -> None:
    original = event(traceparent=TRACEPARENT)
    assert parse_headers(original.headers()) == original


def test_headers_are_binary_mode_attributes() -> None:
    headers = dict(event().headers())
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": event().id.encode(),
        "ce_source": b"/millrace/telemetry",
        "ce_type": b"io.millrace.telemetry.aggregates.v1",
        "ce_time": b"2024-11-22T08:00:00.123Z",
        "ce_subject": b"press-07",
        "ce_dataschema": schema_id_for(TOPIC).encode(),
        "content-type": b"application/json",
    }


def test_extensions_round_trip() -> None:
    headers = [*event().headers(), ("ce_partitionkey", b"press-07")]
    assert parse_headers(headers).extensions == {"partitionkey": "press-07"}


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"])
def test_missing_required_header_is_rejected(name: str) -> None:
    with pytest.raises(EnvelopeError, match=name):
        parse_headers(without(event().headers(), name))


def test_wrong_specversion_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="ce_specversion"):
        parse_headers(replaced(event().headers(), "ce_specversion", b"0.3"))


def test_wrong_content_type_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="content-type"):
        parse_headers(replaced(event().headers(), "content-type", b"application/avro"))


def test_content_type_parameters_are_accepted() -> None:
    headers = replaced(event().headers(), "content-type", b"application/json; charset=utf-8")
    assert parse_headers(headers).id == event().id


def test_malformed_type_and_non_utf8_are_rejected() -> None:
    with pytest.raises(EnvelopeError, match="ce_type"):
        parse_headers(replaced(event().headers(), "ce_type", b"com.example.thing"))
    with pytest.raises(EnvelopeError, match="UTF-8"):
        parse_headers(replaced(event().headers(), "ce_id", b"\xff\xfe"))


def test_invalid_service_name_is_rejected() -> None:
    with pytest.raises(EnvelopeError, match="service"):
        new_event(topic=TOPIC, service="Tele Metry", subject="press-07")


def test_derived_ids_are_deterministic() -> None:
    parts = ("press-07", "spindle_temp_c", 60_000, 1_732_262_400_000)
    assert derived_id(*parts) == derived_id(*parts)
    assert derived_id(*parts) != derived_id("press-07", "spindle_temp_c", 60_000, 1_732_262_460_000)
    assert derived_id("a", "bc") != derived_id("ab", "c")


def test_random_ids_are_unique() -> None:
    first = new_event(topic=TOPIC, service="telemetry", subject="press-07")
    second = new_event(topic=TOPIC, service="telemetry", subject="press-07")
    assert first.id != second.id


def test_rfc3339_is_utc_with_milliseconds() -> None:
    cet = timezone(timedelta(hours=1))
    assert rfc3339(datetime(2024, 11, 22, 9, 0, 0, 123_456, tzinfo=cet)) == (
        "2024-11-22T08:00:00.123Z"
    )
    assert rfc3339_from_millis(1_732_262_400_123) == "2024-11-22T08:00:00.123Z"
    assert rfc3339_from_millis(0) == "1970-01-01T00:00:00.000Z"
