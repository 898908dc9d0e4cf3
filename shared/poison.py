"""Telling an outage from poison: the one rule every stateful consumer applies per record.

A record must never stop its partition. Whatever goes wrong while one record is processed is
either an *outage* (Kafka or PostgreSQL unreachable, a timeout, a retriable transaction
conflict, the task being cancelled) or the record's own fault (*poison*: undecodable,
schema-invalid, a handler or a constraint that its data makes fail). An outage must stall and
retry, so it is re-raised and the consumer's supervisor rebuilds and resumes from the committed
offsets; poison is copied to ``<topic>.dlq`` and the partition moves on.

Usage, once per record, with ``apply`` doing the whole effect in one transaction (so a poison
record's transaction rolls back and leaves nothing behind)::

    error = await isolate(record, lambda: self._apply(record), self._dlq, log=log)
    if error is not None:
        CONSUMED.labels(record.topic, "dlq").inc()
    # the record's offset may now be committed: its effect is durable or it is on the DLQ

:func:`isolate` returns ``None`` when ``apply`` succeeded, and the
:class:`~shared.dlq.InvalidMessageError` it dead-lettered otherwise. A decoder's
``InvalidMessageError`` keeps its reason; any other non-outage exception is sent with the
reason ``processing_error`` and ``dlq_error`` set to ``"<ExceptionType>: <message>"``. The DLQ
send's acknowledgement is awaited before :func:`isolate` returns, so committing the offset after
it never loses the record; if that send fails, its error propagates (an outage of Kafka).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from aiokafka import errors as kafka_errors

from shared.dlq import DlqPublisher, InvalidMessageError, RecordLike
from shared.logging import get_logger

PROCESSING_ERROR = "processing_error"

# Errors of the infrastructure, not of the record. Kafka errors that aiokafka marks retriable
# count as well (see is_outage). OSError covers ConnectionError and socket failures.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    TimeoutError,
    OSError,
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
    kafka_errors.RequestTimedOutError,
    kafka_errors.NoBrokersAvailable,
    kafka_errors.KafkaUnavailableError,
    kafka_errors.ProducerClosed,
    kafka_errors.ConsumerStoppedError,
    # A closed pool or connection ("pool is closing", "connection is closed") is InterfaceError.
    # A value asyncpg cannot encode (an integer out of range) is asyncpg.DataError, a
    # PostgresError like a constraint violation: poison, not listed here.
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InsufficientResourcesError,
    # Serialization failures and deadlocks succeed when the transaction is run again.
    asyncpg.TransactionRollbackError,
    asyncpg.LockNotAvailableError,
    # A statement timeout says the server is slow, not that the record is wrong.
    asyncpg.QueryCanceledError,
)

_log = get_logger(__name__)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) is an outage that must be retried
    rather than blamed on the record being processed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, InvalidMessageError):
            return False
        if isinstance(current, OUTAGE_ERRORS):
            return True
        if isinstance(current, kafka_errors.KafkaError) and current.retriable:
            return True
        current = current.__cause__
    return False


def as_invalid(exc: Exception) -> InvalidMessageError:
    """The DLQ error for ``exc``: a decoder's own error as it is, anything else as a
    ``processing_error`` naming the exception's type and message."""
    if isinstance(exc, InvalidMessageError):
        return exc
    return InvalidMessageError(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")


async def isolate(
    record: RecordLike,
    apply: Callable[[], Awaitable[object]],
    dlq: DlqPublisher,
    *,
    log: structlog.stdlib.BoundLogger | None = None,
) -> InvalidMessageError | None:
    """Run ``apply()`` for ``record``; dead-letter the record if it is poison.

    Returns ``None`` on success and the dead-lettered error otherwise, once the DLQ has
    acknowledged the copy. An outage (see :func:`is_outage`) is re-raised untouched.
    """
    try:
        await apply()
    except Exception as exc:
        if is_outage(exc):
            raise
        error = as_invalid(exc)
        (log or _log).warning(
            "poison record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=error.reason,
            error=error.detail,
            exc_info=exc,
        )
        await (await dlq.send(record, error))
        return error
    return None
