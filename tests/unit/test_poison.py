"""shared.poison: outages are re-raised, poison is dead-lettered with provenance and awaited."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from shared.dlq import DlqPublisher, InvalidMessageError
from shared.poison import PROCESSING_ERROR, is_outage, isolate


@dataclass
class Record:
    topic: str = "production.operation-started.v1"
    partition: int = 2
    offset: int = 41
    key: bytes | None = b"SO-1"
    value: bytes | None = b'{"order_id": "SO-1"}'
    headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] = (("ce_id", b"e-1"),)


@dataclass
class FakeProducer:
    """Records sends; each send's future resolves only when ``ack`` is set."""

    sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = field(
        default_factory=list
    )
    ack: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: int = 0

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]:
        self.sent.append((topic, value, key, headers or []))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        async def acknowledge() -> None:
            await self.ack.wait()
            self.acknowledged += 1
            future.set_result(None)

        asyncio.get_running_loop().create_task(acknowledge())
        return future


def publisher() -> tuple[FakeProducer, DlqPublisher]:
    producer = FakeProducer()
    return producer, DlqPublisher(producer, "orders")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError("refused"),
        TimeoutError(),
        OSError("network unreachable"),
        kafka_errors.KafkaConnectionError("down"),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NodeNotReadyError(),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.NotLeaderForPartitionError(),
        asyncpg.InterfaceError("pool is closing"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.SerializationError("could not serialize access"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncio.CancelledError(),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_outages_are_recognised(exc: BaseException) -> None:
    assert is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad quantity"),
        KeyError("line_no"),
        AssertionError(),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.CheckViolationError("violates check constraint"),
        asyncpg.DataError("invalid input for query argument $1: 2**70 (value out of int64 range)"),
        InvalidMessageError("schema", "missing order_id"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_errors_of_the_record_are_poison(exc: BaseException) -> None:
    assert not is_outage(exc)


def test_an_outage_wrapped_by_a_library_is_still_an_outage() -> None:
    wrapped = RuntimeError("query failed")
    wrapped.__cause__ = ConnectionResetError("reset by peer")
    assert is_outage(wrapped)
    assert not is_outage(RuntimeError("query failed"))


async def test_success_sends_nothing() -> None:
    producer, dlq = publisher()
    applied: list[int] = []

    async def apply() -> None:
        applied.append(1)

    assert await isolate(Record(), apply, dlq) is None
    assert applied == [1]
    assert producer.sent == []


async def test_a_raising_record_is_dead_lettered_with_provenance_after_its_ack() -> None:
    producer, dlq = publisher()

    async def apply() -> None:
        raise KeyError("line_no")

    task = asyncio.create_task(isolate(Record(), apply, dlq))
    await asyncio.sleep(0.01)
    assert not task.done(), "isolate must wait for the DLQ acknowledgement"
    producer.ack.set()
    error = await task

    assert error is not None
    assert error.reason == PROCESSING_ERROR
    assert producer.acknowledged == 1
    (topic, value, key, headers) = producer.sent[0]
    assert (topic, value, key) == ("production.operation-started.v1.dlq", Record().value, b"SO-1")
    named = dict(headers)
    assert named["ce_id"] == b"e-1"
    assert named["dlq_reason"] == b"processing_error"
    assert named["dlq_error"] == b"KeyError: 'line_no'"
    assert named["dlq_source_topic"] == b"production.operation-started.v1"
    assert named["dlq_source_partition"] == b"2"
    assert named["dlq_source_offset"] == b"41"
    assert named["dlq_service"] == b"orders"


async def test_a_decoders_error_keeps_its_reason() -> None:
    producer, dlq = publisher()
    producer.ack.set()

    async def apply() -> None:
        raise InvalidMessageError("envelope", "missing ce_id")

    error = await isolate(Record(), apply, dlq)
    assert error is not None
    assert dict(producer.sent[0][3])["dlq_reason"] == b"envelope"
    assert dict(producer.sent[0][3])["dlq_error"] == b"missing ce_id"


@pytest.mark.parametrize(
    "exc",
    [asyncpg.InterfaceError("pool is closing"), ConnectionError("db down"), TimeoutError()],
    ids=lambda exc: type(exc).__name__,
)
async def test_an_outage_is_reraised_and_not_dead_lettered(exc: Exception) -> None:
    producer, dlq = publisher()

    async def apply() -> None:
        raise exc

    with pytest.raises(type(exc)):
        await isolate(Record(), apply, dlq)
    assert producer.sent == []


async def test_a_failing_dlq_send_propagates() -> None:
    class DownProducer(FakeProducer):
        async def send(self, *args: object, **kwargs: object) -> asyncio.Future[object]:
            raise kafka_errors.KafkaConnectionError("broker down")

    dlq = DlqPublisher(DownProducer(), "orders")

    async def apply() -> None:
        raise ValueError("bad")

    with pytest.raises(kafka_errors.KafkaConnectionError):
        await isolate(Record(), apply, dlq)
