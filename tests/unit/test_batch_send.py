"""BatchSender.extend() builds the same record batches as append() one record at a time,
whether it appends to aiokafka's record builder directly or falls back to the public API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.batch_send import BatchSender, Headers, _builder_of

PARTITIONS = 3


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    ce_id: bytes

    def headers(self) -> Headers:
        return [("ce_id", self.ce_id), ("content-type", b"application/json")]


class PublicOnly:
    """A batch with only BatchBuilder's public surface (no builder to append to directly)."""

    def __init__(self, size: int) -> None:
        self._inner = BatchBuilder(size, 0)

    def append(self, **kw: Any) -> Any:
        return self._inner.append(**kw)

    def record_count(self) -> int:
        return int(self._inner.record_count())

    def _build(self) -> Any:
        return self._inner._build()


class Producer:
    def __init__(self, size: int, *, public_only: bool = False) -> None:
        self.size, self.public_only = size, public_only

    def create_batch(self) -> Any:
        if self.public_only:
            return PublicOnly(self.size)
        return BatchBuilder(self.size, 0)


def _sender(producer: Producer) -> BatchSender:
    sender = BatchSender(producer, "t")
    sender._count = PARTITIONS  # as refresh() learns it from the broker
    return sender


def _contents(sender: BatchSender) -> list[tuple[int, int, list[tuple[Any, ...]]]]:
    """(partition, record count, records as (offset, key, value, headers)) of every batch."""
    out = []
    for partition, batch in [*sender._full, *sender._open.items()]:
        records = [
            (r.offset, r.key, r.value, r.headers) for r in DefaultRecordBatch(bytes(batch._build()))
        ]
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
    for public_only in (False, True):
        one_by_one, extended = (
            _sender(Producer(1024)),
            _sender(Producer(1024, public_only=public_only)),
        )
        for r in rs:
            one_by_one.append(r.key, r.value, r.headers())
        # In several calls, and with append() in between, as the aggregator may mix them.
        cut = len(rs) * split // 4
        extended.extend(rs[:cut])
        if cut < len(rs):
            extended.append(rs[cut].key, rs[cut].value, rs[cut].headers())
            extended.extend(rs[cut + 1 :])
        assert _contents(extended) == _contents(one_by_one)


def test_the_direct_path_is_taken_for_the_producers_batches() -> None:
    # aiokafka 0.14's BatchBuilder: if its shape changes, extend() falls back (and is slower).
    assert _builder_of(BatchBuilder(1024, 0)) is not None
    assert _builder_of(PublicOnly(1024)) is None
    closed = BatchBuilder(1024, 0)
    closed.close()
    assert _builder_of(closed) is None
