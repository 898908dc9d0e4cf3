"""Many records to one topic as whole record batches: one future per batch, not per record.

aiokafka's ``send()`` costs tens of microseconds per record (a future, an accumulator lookup,
and a wait whenever the partition's batch is full); building the batch and handing it over with
``send_batch()`` costs a few. Records are partitioned like the default partitioner does it
(murmur2 of the key), so consumers see the same key -> partition mapping.

``send_batch()`` waits until the partition's previous batch has been drained into a request,
and the producer keeps one request in flight per broker: a boundary's 100 k windows take
hundreds of round trips to hand over. That handover runs in a background task (one at a time,
so each partition's batches keep their order), never in the caller's poll loop.

The batches are :class:`~services.telemetry.kafka.internals.EncodedBatch`es: a record comes
encoded (key, value and headers, ``record_batch.encoded_record``), made when the window record was
made, ahead of the close for a sealed window, and the append only writes its length, timestamp
delta and offset delta in front of it. Every record appended by one :meth:`BatchSender.extend` or
:meth:`BatchSender.append` call gets the call's time as its timestamp.

Sealed windows go further (:class:`PreparedBatches`): their records are appended ahead, in the
allowed lateness, into batches of their own, and the close only stamps those batches with the
time and queues them (:meth:`BatchSender.add_prepared`).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer

from services.telemetry.kafka.internals import EncodedBatch, murmur2
from services.telemetry.kafka.record_batch import (
    CODECS,
    Headers,
    RecordBatchBuilder,
    encoded_record,
)
from shared.kafka import MAX_BATCH_SIZE

_MAX_CACHED_KEYS = 1_000_000
# Records per compressed batch, before compression. The producer puts one batch per partition
# into a request, with one request in flight per broker, so fewer, larger batches hand a
# boundary's records over in fewer round trips (a minute boundary's 100 k window records are
# 45 MB: 45 batches of 1 MiB instead of 180 of 256 KiB). Window records
# compress about twelvefold (zstd), so such a batch stays far below the broker's default
# message.max.bytes (1 MiB, compressed size); uncompressed, batches keep MAX_BATCH_SIZE.
COMPRESSED_BATCH_SIZE = 1024 * 1024


class OutRecord(Protocol):
    """A record for :meth:`BatchSender.extend` (``emit.WindowRecord`` fits)."""

    @property
    def key(self) -> bytes: ...
    @property
    def record(self) -> bytes:
        """``record_batch.encoded_record(key, value, headers)``."""
        ...


class BatchSender:
    """Collects records for one topic; :meth:`flush` hands every batch to the producer.

    ``compression`` is the producer's own (``kafka_compression``); ``batch_size`` (records
    before compression) is by default the producer's ``max_batch_size`` uncompressed, and
    :data:`COMPRESSED_BATCH_SIZE` compressed: the batches are built here, as the producer would
    build them."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        *,
        compression: str = "none",
        batch_size: int | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self._codec = CODECS[compression]
        if batch_size is None:
            batch_size = MAX_BATCH_SIZE if compression == "none" else COMPRESSED_BATCH_SIZE
        self._batch_size = batch_size
        self._count = 0
        self._partition_of: dict[bytes, int] = {}
        self._open: dict[int, EncodedBatch] = {}
        self._full: list[tuple[int, EncodedBatch]] = []
        self._handover: asyncio.Task[list[asyncio.Future[Any]]] | None = None

    async def refresh(self) -> None:
        """Learn the topic's partition count (a change re-partitions keys, as in Kafka)."""
        self.partitions = len(await self.producer.partitions_for(self.topic))

    def append(self, key: bytes, value: bytes, headers: Headers) -> None:
        """Add one record; a full batch is set aside for the next :meth:`flush`."""
        partition = self._partition_of.get(key)
        if partition is None:
            partition = self._partition_for(key)
        self._add(time.time_ns() // 1_000_000, partition, [encoded_record(key, value, headers)])

    def extend(self, records: Iterable[OutRecord]) -> None:
        """:meth:`append` each record, in order (the same batches, less work per record): the
        records are grouped by partition, and each group appended a batch at a time."""
        groups = self.grouped(records)
        now = time.time_ns() // 1_000_000
        for partition, group in groups.items():
            self._add(now, partition, group)

    def grouped(self, records: Iterable[OutRecord]) -> dict[int, list[bytes]]:
        """The records' encoded bytes by partition (the default partitioner's choice), in order
        within each partition."""
        partition_of = self._partition_of
        groups: dict[int, list[bytes]] = {}
        for r in records:
            key = r.key
            partition = partition_of.get(key)
            if partition is None:
                partition = self._partition_for(key)
            group = groups.get(partition)
            if group is None:
                groups[partition] = [r.record]
            else:
                group.append(r.record)
        return groups

    def _add(self, now: int, partition: int, records: list[bytes]) -> None:
        """Append to the partition's batch, setting full ones aside for the flush."""
        done, end = 0, len(records)
        batch = self._open.get(partition)
        while True:
            if batch is None:
                batch = self._open[partition] = self.new_batch()
            done += batch.append_encoded(now, records, done)
            if done == end:
                return
            self._full.append((partition, batch))
            batch = None

    def new_batch(self) -> EncodedBatch:
        """An empty batch with the producer's compression and batch size."""
        return EncodedBatch(RecordBatchBuilder(self._codec, self._batch_size))

    def add_prepared(self, prepared: PreparedBatches, timestamp: int) -> None:
        """Queue batches prepared ahead for the next :meth:`flush`, after every record appended
        so far, their records stamped with ``timestamp``. They must have been prepared for the
        topic's current partition count (``prepared.partitions``)."""
        if prepared.partitions != self._count:
            raise ValueError("prepared for another partition count")
        for partition, batches in prepared.batches.items():
            current = self._open.pop(partition, None)
            if current is not None:
                self._full.append((partition, current))
            for batch in batches:
                batch.restamp(timestamp)
                self._full.append((partition, batch))

    @property
    def partitions(self) -> int:
        """The topic's partition count as last learnt (:meth:`refresh`)."""
        return self._count

    @partitions.setter
    def partitions(self, count: int) -> None:
        """Take ``count`` as the partition count, as :meth:`refresh` does with the broker's (a
        sender used without a broker is given it); a change re-partitions keys, as in Kafka."""
        if count != self._count:
            self._count = count
            self._partition_of.clear()

    def partition(self, key: bytes) -> int:
        """The partition ``key``'s records go to: the default partitioner's choice."""
        partition = self._partition_of.get(key)
        return self._partition_for(key) if partition is None else partition

    @property
    def queued(self) -> list[tuple[int, EncodedBatch]]:
        """(partition, batch) of every batch the next :meth:`flush` hands over: the full ones
        in the order they filled, then each partition's open one."""
        return [*self._full, *self._open.items()]

    def _partition_for(self, key: bytes) -> int:
        """The default partitioner's choice for ``key``, remembered."""
        if len(self._partition_of) >= _MAX_CACHED_KEYS:
            self._partition_of.clear()
        partition: int = (murmur2(key) & 0x7FFFFFFF) % self._count
        self._partition_of[key] = partition
        return partition

    @property
    def ready(self) -> bool:
        return self._count > 0

    @property
    def empty(self) -> bool:
        return not self._open and not self._full

    def flush(self) -> asyncio.Future[None]:
        """Queue every batch for handover to the producer, in append order per partition;
        the returned future resolves once the broker acknowledged all of them (or fails)."""
        ready = interleaved(self.queued)
        self._full, self._open = [], {}
        for _, batch in ready:
            # Complete: closed, the producer sends it without waiting out its linger.
            batch.close()
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


def interleaved(batches: list[tuple[int, EncodedBatch]]) -> list[tuple[int, EncodedBatch]]:
    """The batches, each partition's in their order, taking the partitions in turn: the producer
    takes one batch per partition into a request (and one request at a time per broker), so a
    partition's batches in a row went out one request each."""
    queues: dict[int, list[EncodedBatch]] = {}
    for partition, batch in batches:
        queues.setdefault(partition, []).append(batch)
    return [
        (partition, batch)
        for turn in itertools.zip_longest(*queues.values())
        for partition, batch in zip(queues, turn, strict=True)
        if batch is not None
    ]


class PreparedBatches:
    """Records appended ahead of their sending into batches of their own, by partition, for
    :meth:`BatchSender.add_prepared` (which stamps them with the time they are sent)."""

    def __init__(self, sender: BatchSender) -> None:
        self._sender = sender
        self.partitions = sender.partitions
        self.batches: dict[int, list[EncodedBatch]] = {}
        self.count = 0

    def extend(self, records: Iterable[OutRecord]) -> None:
        """Append ``records``, in order within each partition."""
        sender = self._sender
        for partition, group in sender.grouped(records).items():
            self.count += len(group)
            batches = self.batches.setdefault(partition, [])
            done, end = 0, len(group)
            while done < end:
                if not batches or batches[-1].closed():
                    batches.append(sender.new_batch())
                batch = batches[-1]
                done += batch.append_encoded(0, group, done)
                if batch.closed():
                    # Full: compressed now, ahead of its sending (the last one at its build).
                    batch.compress_ahead()


async def _acked(handover: asyncio.Task[list[asyncio.Future[Any]]]) -> None:
    for sent in await handover:
        await sent
