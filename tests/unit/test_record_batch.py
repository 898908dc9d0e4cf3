"""Record batches of records encoded ahead (``services/telemetry/kafka/record_batch.py``) are,
byte for byte, the batches aiokafka's own builder makes of the same records. That aiokafka's
producer takes them as its own (``internals.EncodedBatch``) is in test_kafka_internals.py."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.kafka.record_batch import (
    CODECS,
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
