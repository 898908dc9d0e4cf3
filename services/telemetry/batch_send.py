"""Many records to one topic as whole record batches: one future per batch, not per record.

aiokafka's ``send()`` costs tens of microseconds per record (a future, an accumulator lookup,
and a wait whenever the partition's batch is full); building the batch with ``create_batch()``
and handing it over with ``send_batch()`` costs a few. Records are partitioned like the default
partitioner does it (murmur2 of the key), so consumers see the same key -> partition mapping.

``send_batch()`` waits until the partition's previous batch has been drained into a request,
and the producer keeps one request in flight per broker: a boundary's 100 k windows take
hundreds of round trips to hand over. That handover runs in a background task (one at a time,
so each partition's batches keep their order), never in the caller's poll loop.

:meth:`BatchSender.extend` appends to the batch's record builder (aiokafka's C extension)
directly, past ``BatchBuilder.append``'s keyword call, serializer hook and metadata object: a
third of the append cost per record. It keeps the builder's record count, which the idempotent
producer numbers its sequences by, as ``BatchBuilder.append`` does, and falls back to the public
``append`` for a batch of any other shape (``tests/unit/test_batch_send.py`` holds both to the
same bytes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder

Headers = list[tuple[str, bytes]]
_MAX_CACHED_KEYS = 1_000_000


class OutRecord(Protocol):
    """A record for :meth:`BatchSender.extend` (``emit.WindowRecord`` fits)."""

    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes: ...
    def headers(self) -> Headers: ...


def _builder_of(batch: Any) -> Any:
    """The record builder to append to directly, or None when ``batch`` is not an open
    ``BatchBuilder`` of the known shape (then its public ``append`` is used)."""
    builder = getattr(batch, "_builder", None)
    if (
        type(builder) is DefaultRecordBatchBuilder
        and type(getattr(batch, "_relative_offset", None)) is int
        and getattr(batch, "_key_serializer", 0) is None
        and getattr(batch, "_value_serializer", 0) is None
        and getattr(batch, "_closed", True) is False
    ):
        return builder
    return None


class BatchSender:
    """Collects records for one topic; :meth:`flush` hands every batch to the producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._count = 0
        self._partition_of: dict[bytes, int] = {}
        self._open: dict[int, Any] = {}
        # Whether the producer's batches let extend() append to their record builder directly.
        self._direct = False
        self._full: list[tuple[int, Any]] = []
        self._handover: asyncio.Task[list[asyncio.Future[Any]]] | None = None

    async def refresh(self) -> None:
        """Learn the topic's partition count (a change re-partitions keys, as in Kafka)."""
        partitions = await self.producer.partitions_for(self.topic)
        if len(partitions) != self._count:
            self._count = len(partitions)
            self._partition_of.clear()

    def append(self, key: bytes, value: bytes, headers: Headers) -> None:
        """Add one record; a full batch is set aside for the next :meth:`flush`."""
        partition = self._partition_of.get(key)
        if partition is None:
            partition = self._partition_for(key)
        batch = self._open.get(partition)
        if batch is None:
            batch = self._new_batch(partition)
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            self._spill(partition, batch, key, value, headers)

    def extend(self, records: Iterable[OutRecord]) -> None:
        """:meth:`append` each record, in order (the same batches, less work per record)."""
        partition_of, open_batches = self._partition_of, self._open
        for r in records:
            key, value, headers = r.key, r.value, r.headers()
            partition = partition_of.get(key)
            if partition is None:
                partition = self._partition_for(key)
            batch = open_batches.get(partition)
            if batch is None:
                batch = self._new_batch(partition)
            if self._direct:
                n = batch._relative_offset
                if batch._builder.append(n, None, key, value, headers) is not None:
                    batch._relative_offset = n + 1
                    continue
                batch.close()  # as BatchBuilder.append does once the batch is full
            elif batch.append(key=key, value=value, timestamp=None, headers=headers) is not None:
                continue
            self._spill(partition, batch, key, value, headers)

    def _partition_for(self, key: bytes) -> int:
        """The default partitioner's choice for ``key``, remembered."""
        if len(self._partition_of) >= _MAX_CACHED_KEYS:
            self._partition_of.clear()
        partition: int = (murmur2(key) & 0x7FFFFFFF) % self._count
        self._partition_of[key] = partition
        return partition

    def _new_batch(self, partition: int) -> Any:
        batch = self._open[partition] = self.producer.create_batch()
        self._direct = _builder_of(batch) is not None
        return batch

    def _spill(self, partition: int, full: Any, key: bytes, value: bytes, headers: Headers) -> None:
        """Set a full batch aside and start the partition's next one with this record."""
        self._full.append((partition, full))
        self._new_batch(partition).append(key=key, value=value, timestamp=None, headers=headers)

    @property
    def ready(self) -> bool:
        return self._count > 0

    @property
    def empty(self) -> bool:
        return not self._open and not self._full

    def flush(self) -> asyncio.Future[None]:
        """Queue every batch for handover to the producer, in append order per partition;
        the returned future resolves once the broker acknowledged all of them (or fails)."""
        ready = [*self._full, *self._open.items()]
        self._full, self._open = [], {}
        self._handover = asyncio.ensure_future(self._hand_over(ready, self._handover))
        return asyncio.ensure_future(_acked(self._handover))

    async def _hand_over(
        self,
        ready: list[tuple[int, Any]],
        previous: asyncio.Task[list[asyncio.Future[Any]]] | None,
    ) -> list[asyncio.Future[Any]]:
        if previous is not None:
            await previous
        return [
            await self.producer.send_batch(batch, self.topic, partition=partition)
            for partition, batch in ready
        ]


async def _acked(handover: asyncio.Task[list[asyncio.Future[Any]]]) -> None:
    for sent in await handover:
        await sent
