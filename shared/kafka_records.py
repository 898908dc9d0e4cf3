"""Consumers that hand over aiokafka's own record objects, without a ``ConsumerRecord`` each.

For every record a poll returns, aiokafka builds a ``ConsumerRecord`` (an 11-field dataclass,
its sizes and a tuple of its headers) from the record object its C batch reader already made:
about 0.7 µs of the 1.1 µs a record costs to unpack. A hot loop that only reads a record's
offset, key and value can take the reader's object as it is. Everything else aiokafka does per
record stays as it was: CRC checks, aborted transactions, control batches, the skipped offsets
of compacted or compressed batches, and the position it keeps.

Opt-in per consumer: :func:`make_raw_consumer` passes :func:`raw_value` as the value
deserializer, and the partition-records class installed in aiokafka's fetcher (once per
process, by :func:`install`) leaves the records of such a consumer as they are. Every other
consumer still gets ``ConsumerRecord``s; without the install, ``raw_value`` changes nothing
either (it returns the value it is given). The records carry no topic and partition: the poll's
``TopicPartition`` has them (see :func:`consumer_record` for the DLQ). The pinned aiokafka's
``PartitionRecords`` is checked by ``tests/integration/test_kafka_records.py``
(docs/decisions/0009-raw-consumer-records.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.consumer import fetcher

from shared.kafka import make_consumer
from shared.settings import ServiceSettings


class RawRecord(Protocol):
    """What a raw record and a ``ConsumerRecord`` both have."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def timestamp_type(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


def raw_value(value: bytes | None) -> bytes | None:
    """The value as it is: the marker of a consumer whose records are left raw."""
    return value


class _PartitionRecords(fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's records of one fetched partition; a raw consumer's become
    :class:`_RawPartitionRecords`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._value_deserializer is raw_value:
            self.__class__ = _RawPartitionRecords


class _RawPartitionRecords(_PartitionRecords):
    """The records as aiokafka's batch reader made them. A poll iterates the record generator
    itself rather than through ``__next__`` (a Python call per record); the generator does all
    the bookkeeping, and ``__next__`` (``getone()``) still works."""

    @staticmethod
    def _consumer_record(tp: TopicPartition, record: Any) -> Any:
        return record

    def __iter__(self) -> Any:
        # None once __next__ has run it to its end (then aiokafka drops these records anyway).
        return self._records_iterator or iter(())


def install() -> None:
    """Let raw consumers' records through as they are (idempotent)."""
    fetcher.PartitionRecords = _PartitionRecords


def make_raw_consumer(
    settings: ServiceSettings,
    *topics: str,
    group_id: str,
    role: str = "consumer",
    **overrides: Any,
) -> AIOKafkaConsumer:
    """:func:`shared.kafka.make_consumer` whose polls return :class:`RawRecord` objects."""
    install()
    return make_consumer(
        settings, *topics, group_id=group_id, role=role, value_deserializer=raw_value, **overrides
    )


def consumer_record(tp: TopicPartition, record: RawRecord) -> ConsumerRecord[bytes, bytes]:
    """The ``ConsumerRecord`` aiokafka would have made of ``record`` (for the DLQ, logs)."""
    key, value = record.key, record.value
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        record.offset,
        record.timestamp,
        record.timestamp_type,
        key,
        value,
        None,
        -1 if key is None else len(key),
        -1 if value is None else len(value),
        tuple(record.headers),
    )
