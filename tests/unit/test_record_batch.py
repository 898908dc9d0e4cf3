"""Record batches of records encoded ahead (``services/telemetry/record_batch.py``) are, byte for
byte, the batches aiokafka's own builder makes of the same records, and aiokafka's producer
machinery takes them as its own."""

from __future__ import annotations

import pytest
from aiokafka.producer.message_accumulator import MessageBatch
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.record_batch import (
    CODECS,
    EncodedBatch,
    RecordBatchBuilder,
    decoded_record,
    encoded_record,
    varint,
)

T0 = 1_700_000_000_000
headers = st.lists(
    st.tuples(st.text(max_size=20), st.one_of(st.none(), st.binary(max_size=50))), max_size=9
)
records = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=30)),  # key
        st.one_of(st.none(), st.binary(max_size=5000)),  # value (some past the length table)
        headers,
        st.integers(-100_000, 100_000),  # timestamp, from T0
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(records, st.sampled_from(sorted(CODECS)), st.integers(100, 20_000), st.booleans())
def test_batches_equal_aiokafkas(
    rs: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]],
    codec: str,
    batch_size: int,
    transactional: bool,
) -> None:
    ours = RecordBatchBuilder(CODECS[codec], batch_size, is_transactional=transactional)
    theirs = DefaultRecordBatchBuilder(2, CODECS[codec], transactional, -1, -1, 0, batch_size)
    for offset, (key, value, hs, ts) in enumerate(rs):
        metadata = theirs.append(offset, T0 + ts, key, value, hs)
        size = ours.append(offset, T0 + ts, encoded_record(key, value, hs))
        # Full at the same record (the first one always fits), with the same record size.
        assert size == (0 if metadata is None else metadata.size)
        if metadata is None:
            break
        assert ours.size() == theirs.size()
    ours.set_producer_state(42, 3, 17)
    theirs.set_producer_state(42, 3, 17)
    assert bytes(ours.build()) == bytes(theirs.build())


@given(st.one_of(st.none(), st.binary(max_size=5000)), st.binary(max_size=10), headers)
def test_an_encoded_record_decodes_to_what_it_was_made_of(
    value: bytes | None, key: bytes, hs: list[tuple[str, bytes | None]]
) -> None:
    assert decoded_record(encoded_record(key, value, hs)) == (key, value, hs)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varints_are_kafkas(n: int) -> None:
    # One record whose timestamp delta is n: aiokafka reads it back.
    batch = RecordBatchBuilder(0, 1 << 20)
    batch.append(0, 0, encoded_record(b"k", b"v", []))
    batch.append(1, n, encoded_record(b"k", b"v", []))
    read = list(DefaultRecordBatch(bytes(batch.build())))
    assert [r.timestamp for r in read] == [0, n]
    assert [varint(0), varint(-1), varint(64)] == [b"\x00", b"\x01", b"\x80\x01"]


async def test_the_producer_takes_an_encoded_batch_as_its_own() -> None:
    """What aiokafka 0.14's producer does with a batch handed to ``send_batch()``: wrap it, let
    ``send()`` append to it until it is closed, set the idempotent producer's state, build it."""
    batch = EncodedBatch(CODECS["zstd"], 1 << 20)
    assert batch.append_encoded(T0, [encoded_record(b"dev-1", b"{}", [("ce_id", b"x")])]) == 1
    wrapped = MessageBatch(TopicPartition("t", 0), batch, ttl=30, linger_time=0)
    assert wrapped.append(b"dev-2", b"[]", None, headers=[("h", b"y")]) is not None
    assert wrapped.record_count == 2
    batch.close()
    assert wrapped.append(b"dev-3", b"", None) is None
    assert batch.append_encoded(T0, [encoded_record(b"dev-3", b"", [])]) == 0
    wrapped.set_producer_state(producer_id=7, producer_epoch=1, base_sequence=100)
    read = DefaultRecordBatch(bytes(wrapped.get_data_buffer()))
    assert (read.producer_id, read.producer_epoch, read.base_sequence) == (7, 1, 100)
    assert [(r.offset, r.key, r.value, r.headers) for r in read] == [
        (0, b"dev-1", b"{}", [("ce_id", b"x")]),
        (1, b"dev-2", b"[]", [("h", b"y")]),
    ]
    assert wrapped.get_data_buffer() is wrapped.get_data_buffer()  # built once


def test_a_full_batch_takes_no_more_records() -> None:
    batch = EncodedBatch(0, 260)
    record = encoded_record(b"k", b"v" * 80, [])
    # 61 bytes of header and 3 x 90: over 260; the rest is left for the next batch.
    assert batch.append_encoded(T0, [record] * 5, 1) == 2
    assert batch.closed()
    assert batch.record_count() == 2


def test_a_restamped_batch_is_the_batch_appended_at_that_time() -> None:
    """Records appended ahead at one timestamp, moved to the time they are sent: the same
    bytes as appending them then. A batch whose records have timestamps of their own is not
    restamped."""
    records = [encoded_record(b"k%d" % i, b"v" * i, [("h", b"x")]) for i in range(5)]
    ahead, then = RecordBatchBuilder(0, 1 << 16), RecordBatchBuilder(0, 1 << 16)
    assert ahead.append_all(0, 0, records[:2]) == 2
    assert ahead.append_all(2, 0, records, 2) == 3
    assert then.append_all(0, 1_800_000_000_000, records) == 5
    ahead.restamp(1_800_000_000_000)
    assert bytes(ahead.build()) == bytes(then.build())
    mixed = RecordBatchBuilder(0, 1 << 16)
    mixed.append_all(0, 1, records[:1])
    mixed.append_all(1, 2, records[1:2])
    with pytest.raises(ValueError, match="timestamps of their own"):
        mixed.restamp(3)


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip", "lz4"])
def test_a_batch_compressed_ahead_builds_the_same_bytes_and_takes_no_more_records(
    codec: str,
) -> None:
    records = [encoded_record(b"k%d" % i, b"v" * (i + 50), [("h", b"x")]) for i in range(20)]
    ahead, at_build = (
        RecordBatchBuilder(CODECS[codec], 1 << 16),
        RecordBatchBuilder(CODECS[codec], 1 << 16),
    )
    for builder in (ahead, at_build):
        assert builder.append_all(0, 0, records) == 20
    ahead.compress_ahead()
    assert ahead.append_all(20, 0, records[:1]) == 0
    ahead.restamp(1_800_000_000_000)
    at_build.restamp(1_800_000_000_000)
    ahead.set_producer_state(7, 1, 42)
    at_build.set_producer_state(7, 1, 42)
    assert bytes(ahead.build()) == bytes(at_build.build())
