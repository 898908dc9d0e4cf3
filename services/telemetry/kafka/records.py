"""Consumers that hand over aiokafka's own record objects, without a ``ConsumerRecord`` each.

For every record a poll returns, aiokafka builds a ``ConsumerRecord`` (an 11-field dataclass,
its sizes and a tuple of its headers) from the record object its C batch reader already made:
most of what a record costs to unpack. A hot loop that only reads a record's offset, key and
value can take the reader's object as it is. Everything else aiokafka does per record stays as
it was: CRC checks, aborted transactions, control batches, the skipped offsets of compacted or
compressed batches, and the position it keeps.

Opt-in per consumer: :func:`make_raw_consumer` passes ``internals.raw_value`` as the value
deserializer and installs the partition-records class that leaves such a consumer's records as
they are (``internals.install_raw_records``; that reach into aiokafka's fetcher is there, with its
tests). Every other consumer still gets ``ConsumerRecord``s. The records carry no topic and
partition: the poll's ``TopicPartition`` has them (see :func:`consumer_record` for the DLQ)
(docs/decisions/0009-raw-consumer-records.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.telemetry.kafka.internals import install_raw_records, raw_value
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


def make_raw_consumer(
    settings: ServiceSettings,
    *topics: str,
    group_id: str,
    role: str = "consumer",
    **overrides: Any,
) -> AIOKafkaConsumer:
    """:func:`shared.kafka.make_consumer` whose polls return :class:`RawRecord` objects."""
    install_raw_records()
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
