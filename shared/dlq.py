"""Dead-letter publishing with provenance, in the manner of arroyo's ``dlq.py``.

A poison record (undecodable, schema-invalid, impossible values) is copied to ``<topic>.dlq``
with its key, value and original headers, plus headers that name the error and where the
record came from. It is sent *before* the source offset is committed, so nothing is lost.
A token bucket limits the DLQ rate; over the limit the caller waits (back-pressure), so a flood
of poison slows the consumer instead of dropping anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter

DLQ_RECORDS = Counter(
    "millrace_dlq_records_total",
    "Records sent to a dead-letter topic, by service, source topic and reason.",
    ["service", "topic", "reason"],
)


class RecordLike(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]


class SendsRecords(Protocol):
    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]: ...


class InvalidMessageError(Exception):
    """Raised by a decoder for poison input; ``reason`` is a short stable label for metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    _tokens: float = 0.0
    _stamp: float = 0.0

    def __post_init__(self) -> None:
        self._tokens = self.burst
        self._stamp = time.monotonic()

    def delay(self) -> float:
        """Take one token; return how long the caller must wait before using it."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate_per_s


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def provenance_headers(
    record: RecordLike, reason: str, detail: str, service: str
) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in record.headers if not k.startswith("dlq_")]
    return [
        *original,
        ("dlq_reason", reason.encode()),
        ("dlq_error", detail[:2000].encode("utf-8", "replace")),
        ("dlq_source_topic", record.topic.encode()),
        ("dlq_source_partition", str(record.partition).encode()),
        ("dlq_source_offset", str(record.offset).encode()),
        ("dlq_service", service.encode()),
        ("dlq_time", datetime.now(UTC).isoformat(timespec="milliseconds").encode()),
    ]


class DlqPublisher:
    """Sends poison records to ``<topic>.dlq``; returns the send's future for batched waiting."""

    def __init__(
        self, producer: SendsRecords, service: str, rate_per_s: float = 1000.0, burst: int = 5000
    ) -> None:
        self._producer = producer
        self._service = service
        self._bucket = TokenBucket(rate_per_s, float(burst))

    async def send(self, record: RecordLike, error: InvalidMessageError) -> asyncio.Future[object]:
        wait = self._bucket.delay()
        if wait > 0:
            await asyncio.sleep(wait)
        DLQ_RECORDS.labels(self._service, record.topic, error.reason).inc()
        return await self._producer.send(
            dlq_topic(record.topic),
            value=record.value,
            key=record.key,
            headers=provenance_headers(record, error.reason, error.detail, self._service),
        )
