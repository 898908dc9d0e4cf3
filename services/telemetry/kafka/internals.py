"""Every reach into aiokafka's and prometheus_client's internals, in one module.

The hot path needs a few things these libraries have no public call for. Each reach is here and
nowhere else in the service, with its test in ``tests/unit/test_kafka_internals.py`` (and, where
it needs a broker, ``tests/integration/test_kafka_internals_broker.py``); why each one is worth
it is docs/decisions/0013-library-internals.md.

- :class:`EncodedBatch`: aiokafka's ``BatchBuilder`` (an undocumented class) over a
  :class:`~services.telemetry.kafka.record_batch.RecordBatchBuilder`, so ``send_batch()`` takes
  a whole record batch of records encoded ahead, with one future per batch.
- :func:`install_raw_records`: a subclass of aiokafka's ``fetcher.PartitionRecords`` put into its
  fetcher module, so a raw consumer's polls return the batch reader's record objects without a
  ``ConsumerRecord`` each (docs/decisions/0009-raw-consumer-records.md).
- :func:`observe_many`: ``Histogram.observe`` ``count`` times in one step, through the
  histogram's private ``_sum`` and ``_buckets``.
- :func:`fetch_committed`: the consumer's group coordinator, for committed offsets with their
  metadata, which the public ``committed()`` drops (the metadata holds the window checkpoint,
  docs/decisions/0002-window-recovery.md).
- Undocumented helpers, used as they are and held to their definitions by the tests: the
  compression codecs (``aiokafka.codec``), CRC-32C (``aiokafka.record.util``) and the default
  partitioner's ``murmur2`` (``aiokafka.partitioner``). They are plain functions bound here once,
  so calling them through this module costs nothing more.

At import the module checks that the installed aiokafka and prometheus-client are the versions it
was written for (:data:`WRITTEN_FOR`, the pins of ``requirements.lock``) and raises ImportError
on any other: on another version a reach may fail at the first batch or fetch, or keep running
with a different meaning, and neither may pass unnoticed.
"""

from __future__ import annotations

from importlib import metadata

# The exact versions these reaches were written and tested for; requirements.lock pins the same
# (a unit test holds them equal). Moving a pin means running the tests above on the new version
# and changing both together.
WRITTEN_FOR = {"aiokafka": "0.14.0", "prometheus-client": "0.26.0"}


def check_versions() -> None:
    """Raise ImportError unless the installed libraries are :data:`WRITTEN_FOR`'s versions."""
    found = {name: metadata.version(name) for name in WRITTEN_FOR}
    wrong = [f"{name} {found[name]}" for name, want in WRITTEN_FOR.items() if found[name] != want]
    if wrong:
        expected = ", ".join(f"{name} {want}" for name, want in WRITTEN_FOR.items())
        raise ImportError(
            f"{__name__} reaches into library internals written for {expected}, but found "
            f"{', '.join(wrong)}. Install the pinned versions (pip install -r requirements.lock). "
            "To move a pin, run tests/unit/test_kafka_internals.py and "
            "tests/integration/test_kafka_internals_broker.py on the new version, fix each reach "
            "that fails, then change WRITTEN_FOR and requirements.lock together "
            "(docs/decisions/0013-library-internals.md)."
        )


# Before the imports below: a version that moved one of these names fails with the message
# above, naming the versions, rather than with a bare missing name.
check_versions()

import copy  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from typing import TYPE_CHECKING, Any, NamedTuple  # noqa: E402

from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: E402
from aiokafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode  # noqa: E402
from aiokafka.consumer import fetcher  # noqa: E402
from aiokafka.partitioner import murmur2  # noqa: E402
from aiokafka.producer.message_accumulator import BatchBuilder  # noqa: E402
from aiokafka.record.util import calc_crc32c  # noqa: E402
from aiokafka.structs import OffsetAndMetadata  # noqa: E402
from prometheus_client import Histogram  # noqa: E402

if TYPE_CHECKING:
    from services.telemetry.kafka.record_batch import RecordBatchBuilder

__all__ = [
    "COMPRESS",
    "WRITTEN_FOR",
    "EncodedBatch",
    "calc_crc32c",
    "check_versions",
    "fetch_committed",
    "install_raw_records",
    "murmur2",
    "observe_many",
    "raw_value",
]

# Compression by Kafka's codec id (a record batch's attributes), as aiokafka's producer does it.
COMPRESS: dict[int, Callable[[bytes], bytes]] = {
    1: gzip_encode,
    2: snappy_encode,
    3: lz4_encode,
    4: zstd_encode,
}


# --- Producing: aiokafka's BatchBuilder over a batch of records encoded ahead -----------------


class _Metadata(NamedTuple):
    """What aiokafka's ``MessageBatch`` reads of an appended record."""

    offset: int
    size: int
    timestamp: int
    crc: None = None


class EncodedBatch(BatchBuilder):  # type: ignore[misc]  # aiokafka is untyped
    """aiokafka's ``BatchBuilder`` over ``builder``: ``send_batch()`` takes it as it takes its
    own; :meth:`append_encoded` appends records encoded ahead.

    The producer reads the batch through ``BatchBuilder``'s own methods (``close``, ``closed``,
    ``record_count``, ``size``, ``build``), which use the attributes set here, and numbers the
    idempotent producer's sequences by ``_relative_offset``."""

    def __init__(self, builder: RecordBatchBuilder) -> None:
        # Not BatchBuilder.__init__ (it makes aiokafka's builder); the same attributes.
        self._builder = builder
        self._relative_offset = 0
        self._buffer = None
        self._closed = False

    def append_encoded(self, timestamp: int, records: Sequence[bytes], start: int = 0) -> int:
        """Append ``records[start:]`` (``record_batch.encoded_record``) until the batch is full;
        how many it took. A full batch is closed."""
        if self._closed:
            return 0
        n = self._relative_offset
        taken = self._builder.append_all(n, timestamp, records, start)
        self._relative_offset = n + taken
        if start + taken < len(records):
            self.close()
        return taken

    def restamp(self, timestamp: int) -> None:
        """``RecordBatchBuilder.restamp``."""
        self._builder.restamp(timestamp)

    def peek(self) -> bytes:
        """The batch's bytes as the producer would build them now, the batch left as it is:
        for reading back what it holds (``DefaultRecordBatch(batch.peek())``). A build
        compresses the records in place and aiokafka builds a batch once, so this builds a
        copy."""
        return bytes(copy.deepcopy(self._builder).build())

    def compress_ahead(self) -> None:
        """Close the batch and compress its records now (``RecordBatchBuilder.compress_ahead``)."""
        self.close()
        self._builder.compress_ahead()

    def append(
        self, *, timestamp: int | None, key: bytes | None, value: bytes | None, headers: Any = ()
    ) -> _Metadata | None:
        """``BatchBuilder.append``, for the producer's own ``send()`` to the same partition."""
        if self._closed:
            return None
        ts = time.time_ns() // 1_000_000 if timestamp is None else timestamp
        n = self._relative_offset
        size = self._builder.append_record(n, ts, key, value, headers or ())
        if not size:
            self.close()
            return None
        self._relative_offset = n + 1
        return _Metadata(n, size, ts)

    def _set_producer_state(
        self, producer_id: int, producer_epoch: int, base_sequence: int
    ) -> None:
        self._builder.set_producer_state(producer_id, producer_epoch, base_sequence)


# --- Consuming: aiokafka's record objects as they are -----------------------------------------


def raw_value(value: bytes | None) -> bytes | None:
    """The value as it is: the value deserializer that marks a consumer whose records are left
    raw (``records.make_raw_consumer``). Without :func:`install_raw_records` it changes nothing."""
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
    the bookkeeping (CRC checks, aborted transactions, control batches, the position), and
    ``__next__`` (``getone()``) still works."""

    @staticmethod
    def _consumer_record(tp: TopicPartition, record: Any) -> Any:
        return record

    def __iter__(self) -> Any:
        # None once __next__ has run it to its end (then aiokafka drops these records anyway).
        return self._records_iterator or iter(())


def install_raw_records() -> None:
    """Let raw consumers' records through as they are (idempotent; every other consumer still
    gets ``ConsumerRecord``s)."""
    fetcher.PartitionRecords = _PartitionRecords


async def fetch_committed(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """The group's committed offsets of ``partitions`` with their metadata; a partition without
    a commit is not in it. aiokafka's public ``committed()`` returns the offset alone."""
    committed: dict[
        TopicPartition, OffsetAndMetadata
    ] = await consumer._coordinator.fetch_committed_offsets(list(partitions))
    return committed


# --- Metrics -----------------------------------------------------------------------------------


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """``histogram.observe(amount)`` ``count`` times, in one step.

    A boundary closes tens of thousands of windows with the same end, so the same emit lag, and
    prometheus_client has no call for many equal observations: this does what
    ``Histogram.observe`` does, without an exemplar."""
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    histogram._sum.inc(amount * count)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(count)
            break
