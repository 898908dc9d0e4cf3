"""Transports for simulated batches: Kafka (the backbone) and HTTP (the telemetry ingest API).

Both are at-least-once: a batch counts as sent only once the broker acknowledged it or the API
answered 2xx, and a failed attempt is retried with the same CloudEvents id, so a consumer that
deduplicates on ``ce_id`` sees a retry as one event. A 4xx (other than 408/429) is the receiver
saying the batch is wrong: it is logged with its reason and counted, never retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson

from contracts.envelope import CloudEvent, new_event
from millrace.simulator.config import READINGS_TOPIC
from millrace.simulator.generator import Message
from millrace.simulator.report import Tally
from shared.logging import get_logger

log = get_logger(__name__)

SERVICE = "simulator"
MAX_BACKOFF_S = 5.0
Sleep = Callable[[float], Awaitable[None]]


class Sender(Protocol):
    transport: str

    async def send(self, messages: Sequence[Message]) -> None:
        """Deliver ``messages``; return once each is acknowledged or given up on."""

    async def close(self) -> None:
        """Flush and release the transport."""


def envelope(message: Message) -> CloudEvent:
    """The batch's CloudEvent; its time is the newest reading's, when the batch was complete.

    Its type is always the contract's, whatever topic name the batch is published on.
    """
    newest = max(r["ts"] for r in message.batch["readings"])
    return new_event(
        topic=READINGS_TOPIC,
        service=SERVICE,
        subject=message.device_id,
        time=datetime.fromtimestamp(newest / 1000, tz=UTC),
    )


def backoff_s(attempt: int, base_s: float) -> float:
    """Exponential backoff after failed attempt ``attempt`` (1-based), capped."""
    return float(min(MAX_BACKOFF_S, base_s * 2 ** (attempt - 1)))


class KafkaSender:
    """Enqueues a whole tick with ``producer.send`` and then awaits the acks together."""

    transport = "kafka"

    def __init__(
        self,
        producer: Any,
        topic: str,
        tally: Tally,
        *,
        max_attempts: int = 5,
        base_backoff_s: float = 0.2,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._tally = tally
        self._max_attempts = max_attempts
        self._base_backoff_s = base_backoff_s
        self._sleep = sleep

    async def send(self, messages: Sequence[Message]) -> None:
        todo = [(m, envelope(m).headers()) for m in messages]
        for attempt in range(1, self._max_attempts + 1):
            pending: list[tuple[Message, Any, Any]] = []
            for message, headers in todo:
                try:
                    future = await self._producer.send(
                        self._topic,
                        value=orjson.dumps(message.batch),
                        key=message.device_id.encode(),
                        headers=headers,
                    )
                except Exception as exc:  # noqa: BLE001 - counted and retried below
                    future = exc
                pending.append((message, headers, future))
            results = await asyncio.gather(
                *(_settled(f) for _, _, f in pending), return_exceptions=True
            )
            todo = []
            for (message, headers, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    self._tally.error(self.transport, type(result).__name__)
                    todo.append((message, headers))
                else:
                    self._tally.sent(self.transport, message)
            if not todo:
                return
            if attempt < self._max_attempts:
                await self._sleep(backoff_s(attempt, self._base_backoff_s))
        for message, _ in todo:
            self._tally.error(self.transport, "gave_up")
            log.error("kafka send gave up", device_id=message.device_id, attempts=attempt)

    async def close(self) -> None:
        await self._producer.flush()
        await self._producer.stop()


async def _settled(future: Any) -> Any:
    if isinstance(future, BaseException):
        raise future
    return await future


class HttpSender:
    """POSTs each batch to the ingest API with at most ``concurrency`` requests in flight."""

    transport = "http"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        tally: Tally,
        *,
        token: str | None = None,
        concurrency: int = 8,
        max_attempts: int = 5,
        base_backoff_s: float = 0.2,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client = client
        self._url = url
        self._tally = tally
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._slots = asyncio.Semaphore(concurrency)
        self._max_attempts = max_attempts
        self._base_backoff_s = base_backoff_s
        self._sleep = sleep

    async def send(self, messages: Sequence[Message]) -> None:
        await asyncio.gather(*(self._post(m) for m in messages))

    def _headers(self, message: Message) -> dict[str, str]:
        # CloudEvents HTTP binary mode: the same attributes as on Kafka, with "ce-" prefixes.
        ce = {k.replace("ce_", "ce-", 1): v.decode() for k, v in envelope(message).headers()}
        return {**ce, **self._auth}

    async def _post(self, message: Message) -> None:
        body, headers = orjson.dumps(message.batch), self._headers(message)
        for attempt in range(1, self._max_attempts + 1):
            async with self._slots:
                try:
                    response = await self._client.post(self._url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    reason = type(exc).__name__
                else:
                    if response.is_success:
                        self._tally.sent(self.transport, message)
                        return
                    reason = f"http_{response.status_code}"
                    if response.is_client_error and response.status_code not in (408, 429):
                        self._tally.error(self.transport, reason)
                        log.warning(
                            "http batch rejected",
                            device_id=message.device_id,
                            status=response.status_code,
                            reason=response.text[:500],
                        )
                        return
            self._tally.error(self.transport, reason)
            if attempt < self._max_attempts:
                await self._sleep(backoff_s(attempt, self._base_backoff_s))
        self._tally.error(self.transport, "gave_up")
        log.error("http send gave up", device_id=message.device_id, attempts=self._max_attempts)

    async def close(self) -> None:
        await self._client.aclose()
