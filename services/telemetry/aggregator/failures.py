"""Records whose processing raised, as opposed to an outage of Kafka or PostgreSQL.

Such a record raises again on every retry and on every replay (the processing is
deterministic), so retrying it would stop its partition for good. It goes to the readings' DLQ
instead, with its provenance and the exception (reason ``processing_error``, ``dlq_error`` the
stage and the exception), is counted and logged with its stack trace, and the partition moves
on. Stages: ``decode``, ``windows`` (adding its readings), ``alarms`` (alarm and machine-state
rules) and ``emit`` (a closed window that cannot be encoded: see :func:`window_source`). A
MemoryError is the process's failure, not the record's: it propagates (the supervisor restarts
and replays), as an outage does.

The windows cannot raise for a record the decoder accepted (their statistics are total over
finite numbers); should they anyway, the readings of that record added before the failure stay
in the windows, and a replay, doing the same, rebuilds the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.telemetry.kafka.records import RawRecord
from services.telemetry.windows.model import WindowKey
from shared.dlq import InvalidMessageError, RecordLike

PROCESSING_ERROR = "processing_error"


@dataclass(slots=True)
class Failure:
    """A record whose ``stage`` raised ``error``."""

    stage: str
    record: RawRecord
    error: BaseException


def processing_error(stage: str, error: BaseException, about: str = "") -> InvalidMessageError:
    """The DLQ reason and error text of a failure: ``<stage>: [<about>: ]<type>: <message>``."""
    where = f"{stage}: {about}: " if about else f"{stage}: "
    return InvalidMessageError(PROCESSING_ERROR, f"{where}{type(error).__name__}: {error}")


@dataclass(slots=True)
class WindowSource:
    """A closed window that could not be encoded, as the DLQ record that reports it.

    The readings it summarised are spread over many records, which the aggregator no longer
    holds: the DLQ record has no value, is keyed by the device and points at the offset of the
    window's first reading; its error names the window (device, metric, size, start). The
    window is not emitted, so its partition's commit moves past it; a replay reports it again
    the same way (the same readings make the same window)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] = ()


def window_source(topic: str, partition: int, window: WindowKey, offset: int) -> RecordLike:
    """:class:`WindowSource` of ``window`` on the readings' ``topic`` and ``partition``."""
    return WindowSource(topic, partition, offset, window[0].encode())


def window_name(window: WindowKey) -> str:
    device, metric, size, start = window
    return f"window {device}/{metric}/{size}ms/{start}"
