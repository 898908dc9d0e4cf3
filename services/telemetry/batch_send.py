"""Many records to one topic as whole record batches: one future per batch, not per record.

aiokafka's ``send()`` costs tens of microseconds per record (a future, an accumulator lookup,
and a wait whenever the partition's batch is full); building the batch with ``create_batch()``
and handing it over with ``send_batch()`` costs a few. Records are partitioned like the default
partitioner does it (murmur2 of the key), so consumers see the same key -> partition mapping.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

Headers = list[tuple[str, bytes]]
_MAX_CACHED_KEYS = 1_000_000


class BatchSender:
    """Collects records for one topic; :meth:`flush` hands every batch to the producer."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._count = 0
        self._partition_of: dict[bytes, int] = {}
        self._open: dict[int, Any] = {}
        self._full: list[tuple[int, Any]] = []

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
            if len(self._partition_of) >= _MAX_CACHED_KEYS:
                self._partition_of.clear()
            partition = (murmur2(key) & 0x7FFFFFFF) % self._count
            self._partition_of[key] = partition
        batch = self._open.get(partition)
        if batch is None:
            batch = self._open[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            self._full.append((partition, batch))
            batch = self._open[partition] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)

    @property
    def ready(self) -> bool:
        return self._count > 0

    @property
    def empty(self) -> bool:
        return not self._open and not self._full

    async def flush(self) -> list[asyncio.Future[Any]]:
        """Hand every batch to the producer, in append order per partition; the futures
        resolve once the broker acknowledged them."""
        ready = [*self._full, *self._open.items()]
        self._full, self._open = [], {}
        return [
            await self.producer.send_batch(batch, self.topic, partition=partition)
            for partition, batch in ready
        ]
