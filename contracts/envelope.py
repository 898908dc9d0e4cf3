"""CloudEvents 1.0 in Kafka binary content mode, as docs/architecture.md fixes it.

The Kafka value is the event's data as UTF-8 JSON; the attributes ride in ``ce_*`` headers, so
any CloudEvents-aware consumer, a plain Kafka consumer or kcat reads every event without
Millrace code.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
_TYPE_RE = re.compile(r"^io\.millrace\.[a-z0-9-]+\.[a-z0-9-]+\.v[0-9]+$")
_SOURCE_RE = re.compile(r"^/millrace/[a-z0-9-]+$")
# Namespace for deterministic ids of derived events (uuid5 over a stable name). Public because
# hot paths precompute the uuid5 hash prefix (services/telemetry/emit.py); never change it.
DERIVED_NAMESPACE = uuid.UUID("5b0f6c9e-2d7a-4c1e-9f3b-6d1a2e4c8b70")

Headers = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A record's headers do not form a valid CloudEvent."""


def ce_type_for(topic: str) -> str:
    """``telemetry.readings.v1`` -> ``io.millrace.telemetry.readings.v1``."""
    return f"io.millrace.{topic}"


def schema_id_for(topic: str) -> str:
    """The ``ce_dataschema`` of a topic: the ``$id`` of its committed JSON Schema."""
    return f"urn:millrace:schema:{topic}"


def derived_id(*parts: object) -> str:
    """A deterministic event id, so that a replay produces the same ``ce_id``."""
    name = "\x1f".join(str(p) for p in parts)
    return str(uuid.uuid5(DERIVED_NAMESPACE, name))


def random_id() -> str:
    return str(uuid.uuid4())


def rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_from_millis(ms: int) -> str:
    return rfc3339(datetime.fromtimestamp(ms / 1000, tz=UTC))


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """The CloudEvents attributes of one Kafka record (its data travels separately)."""

    id: str
    source: str
    type: str
    subject: str
    time: str
    dataschema: str
    traceparent: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def headers(self) -> Headers:
        """Kafka headers in binary content mode."""
        out: Headers = [
            ("ce_specversion", SPECVERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", self.time.encode()),
            ("ce_subject", self.subject.encode()),
            ("ce_dataschema", self.dataschema.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if self.traceparent:
            out.append(("traceparent", self.traceparent.encode()))
        out.extend((f"ce_{k}", v.encode()) for k, v in self.extensions.items())
        return out


def new_event(
    *,
    topic: str,
    service: str,
    subject: str,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """Build the envelope of an event published on ``topic`` by ``service``."""
    source = f"/millrace/{service}"
    if not _SOURCE_RE.match(source):
        raise EnvelopeError(f"invalid service name for ce_source: {service!r}")
    return CloudEvent(
        id=event_id or random_id(),
        source=source,
        type=ce_type_for(topic),
        subject=subject,
        time=rfc3339(time or datetime.now(UTC)),
        dataschema=schema_id_for(topic),
        traceparent=traceparent,
    )


_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")


def parse_headers(headers: Headers | tuple[tuple[str, bytes], ...]) -> CloudEvent:
    """Read the CloudEvent attributes from Kafka headers; raise EnvelopeError if invalid."""
    found: dict[str, str] = {}
    try:
        for key, value in headers:
            found[key] = value.decode()
    except UnicodeDecodeError as exc:
        raise EnvelopeError(f"header is not UTF-8: {exc}") from exc
    missing = [h for h in _REQUIRED if not found.get(h)]
    if missing:
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if found["ce_specversion"] != SPECVERSION:
        raise EnvelopeError(f"unsupported ce_specversion {found['ce_specversion']!r}")
    ctype = found.get("content-type", CONTENT_TYPE)
    if ctype.split(";")[0].strip() != CONTENT_TYPE:
        raise EnvelopeError(f"unsupported content-type {ctype!r}")
    if not _TYPE_RE.match(found["ce_type"]):
        raise EnvelopeError(f"invalid ce_type {found['ce_type']!r}")
    known = {*_REQUIRED, "ce_subject", "ce_dataschema", "content-type", "traceparent"}
    return CloudEvent(
        id=found["ce_id"],
        source=found["ce_source"],
        type=found["ce_type"],
        subject=found.get("ce_subject", ""),
        time=found["ce_time"],
        dataschema=found.get("ce_dataschema", ""),
        traceparent=found.get("traceparent"),
        extensions={k[3:]: v for k, v in found.items() if k.startswith("ce_") and k not in known},
    )


def stable_hash(data: bytes) -> str:
    """Short content hash, used to derive ids of events that carry no natural identity."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()
