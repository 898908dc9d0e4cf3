"""BatchSender.extend() builds the same record batches as append() one record at a time, and
those are the batches aiokafka's own builder makes of the same records; batches prepared ahead
(PreparedBatches) and stamped when queued hold what extend() at that time would have."""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass
from typing import Any, cast
from unittest import mock

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.kafka.batch_send import BatchSender, PreparedBatches, interleaved
from services.telemetry.kafka.record_batch import Headers, encoded_record

PARTITIONS = 3


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    ce_id: bytes

    def headers(self) -> Headers:
        return [("ce_id", self.ce_id), ("content-type", b"application/json")]

    @property
    def record(self) -> bytes:
        return encoded_record(self.key, self.value, self.headers())


def _sender(batch_size: int, codec: str = "none") -> BatchSender:
    sender = BatchSender(
        cast("AIOKafkaProducer", None), "t", compression=codec, batch_size=batch_size
    )
    sender.partitions = PARTITIONS  # as refresh() learns it from the broker
    return sender


_PARTITION = operator.itemgetter(0)


def _contents(sender: BatchSender) -> list[tuple[int, int, list[tuple[Any, ...]]]]:
    """(partition, record count, records as (offset, key, value, headers)) of every batch."""
    out = []
    for partition, batch in sender.queued:
        records = [(r.offset, r.key, r.value, r.headers) for r in DefaultRecordBatch(batch.peek())]
        out.append((partition, batch.record_count(), records))
    return out


records = st.lists(
    st.builds(
        Record,
        key=st.sampled_from([b"dev-1", b"dev-2", b"dev-3", b"dev-4", b"dev-5"]),
        value=st.binary(min_size=1, max_size=300),
        ce_id=st.binary(min_size=1, max_size=36),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(records, st.integers(0, 3))
def test_extend_builds_the_batches_append_builds(rs: list[Record], split: int) -> None:
    # Small batches (1 KiB), so that records overflow into new batches on the way.
    one_by_one, extended = _sender(1024), _sender(1024)
    # One clock for both: a timestamp delta's length decides where a batch is full.
    with mock.patch("services.telemetry.kafka.batch_send.time.time_ns", return_value=10**15):
        _fill(one_by_one, extended, rs, split)
    # Each partition's batches in the same order (which partition's batch filled first is not
    # kept: extend() appends a partition's records at a time).
    assert sorted(_contents(extended), key=_PARTITION) == sorted(
        _contents(one_by_one), key=_PARTITION
    )


def _fill(one_by_one: BatchSender, extended: BatchSender, rs: list[Record], split: int) -> None:
    for r in rs:
        one_by_one.append(r.key, r.value, r.headers())
    # In several calls, and with append() in between, as the aggregator may mix them.
    cut = len(rs) * split // 4
    extended.extend(rs[:cut])
    if cut < len(rs):
        extended.append(rs[cut].key, rs[cut].value, rs[cut].headers())
        extended.extend(rs[cut + 1 :])


@settings(max_examples=30, deadline=None)
@given(records, st.sampled_from(["none", "zstd", "gzip"]))
def test_the_batches_are_those_aiokafka_builds(rs: list[Record], codec: str) -> None:
    """Each batch, appended to aiokafka's builder record by record (same timestamps), gives
    the same bytes; so every record lands in the partition the default partitioner picks, in
    order, and no record is lost or doubled."""
    sender = _sender(1024, codec)
    sender.extend(rs)
    seen = []
    for partition, batch in sender.queued:
        ours = batch.peek()
        parsed = list(DefaultRecordBatch(ours))
        theirs = DefaultRecordBatchBuilder(
            2, {"none": 0, "gzip": 1, "zstd": 4}[codec], 0, -1, -1, 0, 1024
        )
        for r in parsed:
            assert theirs.append(r.offset, r.timestamp, r.key, r.value, list(r.headers))
        assert bytes(theirs.build()) == ours
        seen += [(partition, r.key, r.value) for r in parsed]
    expected = [(sender.partition(r.key), r.key, r.value) for r in rs]
    assert sorted(seen) == sorted(expected)
    for p in range(PARTITIONS):
        assert [s for s in seen if s[0] == p] == [e for e in expected if e[0] == p]


@settings(max_examples=60, deadline=None)
@given(records, st.integers(1, 4), st.integers(0, 5), st.sampled_from(["none", "zstd"]))
def test_prepared_batches_hold_what_extend_appends_when_they_are_queued(
    rs: list[Record], parts: int, before: int, codec: str
) -> None:
    """Records prepared in several steps, then queued (stamped) after ``before`` records were
    appended the usual way: every partition gets its records in the order they came, the
    prepared ones stamped with the queueing time, and the same records as extend() of
    everything at once (each batch readable by aiokafka; full ones compressed ahead)."""
    when = 10**12
    first, rest = rs[:before], rs[before:]
    want = _sender(1024, codec)
    with mock.patch("services.telemetry.kafka.batch_send.time.time_ns", return_value=when * 10**6):
        want.extend(rs)
    got = _sender(1024, codec)
    prepared = PreparedBatches(got)
    step = max(1, len(rest) // parts)
    for i in range(0, len(rest), step):
        prepared.extend(rest[i : i + step])
    assert prepared.count == len(rest)
    with mock.patch("services.telemetry.kafka.batch_send.time.time_ns", return_value=when * 10**6):
        got.extend(first)
    got.add_prepared(prepared, when)

    def by_partition(sender: BatchSender) -> dict[int, list[tuple[Any, ...]]]:
        out: dict[int, list[tuple[Any, ...]]] = {}
        for partition, batch in sender.queued:
            for r in DefaultRecordBatch(batch.peek()):
                out.setdefault(partition, []).append((r.timestamp, r.key, r.value, r.headers))
        return out

    assert by_partition(got) == by_partition(want)


def test_batches_prepared_for_another_partition_count_are_refused() -> None:
    sender = _sender(1024)
    prepared = PreparedBatches(sender)
    prepared.extend([Record(b"dev-1", b"v", b"id")])
    sender.partitions = PARTITIONS + 1  # refresh() learnt of a new partition
    with pytest.raises(ValueError, match="partition count"):
        sender.add_prepared(prepared, 1)


def test_flush_hands_the_partitions_batches_over_in_turn_and_closed() -> None:
    """The producer takes one batch per partition into a request: a partition's batches in a
    row would go one request each. Each partition keeps its own order."""
    a1, a2, a3, b1, c1, c2 = (mock.Mock(name=n) for n in ("a1", "a2", "a3", "b1", "c1", "c2"))
    batches = [(0, a1), (0, a2), (0, a3), (1, b1), (2, c1), (2, c2)]
    assert interleaved(batches) == [(0, a1), (1, b1), (2, c1), (0, a2), (2, c2), (0, a3)]
    sent: list[tuple[int, Any]] = []

    class Producer:
        async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
            sent.append((partition, batch))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    async def flush() -> None:
        sender = _sender(1024)
        sender.producer = cast("AIOKafkaProducer", Producer())
        sender.extend([Record(b"dev-%d" % (i % 5), b"x" * 300, b"id") for i in range(40)])
        await sender.flush()

    asyncio.run(flush())
    partitions = [p for p, _ in sent]
    order = sorted(set(partitions), key=partitions.index)
    per = {p: partitions.count(p) for p in order}
    assert len(order) > 1
    assert max(per.values()) > 1
    assert partitions == [p for turn in range(max(per.values())) for p in order if per[p] > turn]
    assert all(batch.closed() for _, batch in sent)
