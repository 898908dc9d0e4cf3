"""Each reach of ``services/telemetry/kafka/internals.py`` into aiokafka's and prometheus_client's
internals, held to what the service relies on; the version check at import; and that no other
module of the service imports anything of these libraries beyond their documented API. The
reach that needs a broker (``fetch_committed``, and the raw records through a real fetch) is
tested in ``tests/integration/test_kafka_internals_broker.py``."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from aiokafka.consumer import fetcher
from aiokafka.producer.message_accumulator import MessageBatch
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from services.telemetry.kafka import internals
from services.telemetry.kafka.internals import (
    COMPRESS,
    EncodedBatch,
    calc_crc32c,
    install_raw_records,
    murmur2,
    observe_many,
    raw_value,
)
from services.telemetry.kafka.record_batch import CODECS, RecordBatchBuilder, encoded_record
from services.telemetry.kafka.records import consumer_record

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000
TP = TopicPartition("t", 0)

# --- The version check --------------------------------------------------------------------------


def test_the_installed_versions_are_the_ones_written_for() -> None:
    internals.check_versions()


def test_the_versions_written_for_are_the_locked_ones() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    for name, version in internals.WRITTEN_FOR.items():
        assert re.search(rf"^{re.escape(name)}=={re.escape(version)}$", lock, re.MULTILINE), name


@pytest.mark.parametrize("library", sorted(internals.WRITTEN_FOR))
def test_another_version_fails_loudly_at_import(
    monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "99.0.0" if name == library else real(name)
    )
    with pytest.raises(ImportError) as raised:
        importlib.reload(internals)
    message = str(raised.value)
    assert f"found {library} 99.0.0" in message
    assert f"{library} {internals.WRITTEN_FOR[library]}" in message
    assert "pip install -r requirements.lock" in message
    # The check runs before anything else of the module: what other modules hold is unchanged.
    assert sys.modules[internals.__name__] is internals
    assert internals.EncodedBatch is EncodedBatch


# --- Nothing else imports undocumented names ----------------------------------------------------

# aiokafka's documented API (its API reference): the clients, the structs, the errors, the
# rebalance listener, the SSL helper and the admin client.
DOCUMENTED = frozenset(
    {
        "aiokafka",
        "aiokafka.abc",
        "aiokafka.admin",
        "aiokafka.errors",
        "aiokafka.helpers",
        "aiokafka.structs",
        "prometheus_client",
    }
)


def _library_imports(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    return [m for m in modules if m.split(".")[0] in {"aiokafka", "prometheus_client"}]


def test_only_internals_imports_beyond_the_documented_api() -> None:
    others = [
        p
        for d in ("services/telemetry", "shared")
        for p in sorted((ROOT / d).rglob("*.py"))
        if p.name != "internals.py"
    ]
    undocumented = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in others
        for m in _library_imports(p)
        if m not in DOCUMENTED
    ]
    assert not undocumented


# --- Producing: EncodedBatch as aiokafka's BatchBuilder -----------------------------------------


async def test_the_producer_takes_an_encoded_batch_as_its_own() -> None:
    """What aiokafka 0.14's producer does with a batch handed to ``send_batch()``: wrap it, let
    ``send()`` append to it until it is closed, set the idempotent producer's state, build it."""
    batch = EncodedBatch(RecordBatchBuilder(CODECS["zstd"], 1 << 20))
    assert batch.append_encoded(T0, [encoded_record(b"dev-1", b"{}", [("ce_id", b"x")])]) == 1
    wrapped = MessageBatch(TP, batch, ttl=30, linger_time=0)
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
    batch = EncodedBatch(RecordBatchBuilder(0, 260))
    record = encoded_record(b"k", b"v" * 80, [])
    # 61 bytes of header and 3 x 90: over 260; the rest is left for the next batch.
    assert batch.append_encoded(T0, [record] * 5, 1) == 2
    assert batch.closed()
    assert batch.record_count() == 2


@pytest.mark.parametrize("codec", sorted(set(CODECS) - {"none"}))
def test_each_codec_compresses_what_aiokafkas_reader_decompresses(codec: str) -> None:
    records = [encoded_record(b"k%d" % i, b"v" * (i + 50), [("h", b"x")]) for i in range(20)]
    builder = RecordBatchBuilder(CODECS[codec], 1 << 16)
    assert builder.append_all(0, T0, records) == 20
    read = DefaultRecordBatch(bytes(builder.build()))
    assert read.compression_type == CODECS[codec]
    assert [(r.key, r.value) for r in read] == [(b"k%d" % i, b"v" * (i + 50)) for i in range(20)]
    assert set(COMPRESS) == set(CODECS.values()) - {0}


def test_crc32c_is_castagnolis() -> None:
    assert calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


@pytest.mark.parametrize(
    ("key", "java"),
    [
        # Kafka's own test vectors for Utils.murmur2 (signed 32-bit in Java).
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_is_the_java_clients(key: bytes, java: int) -> None:
    """The batch sender partitions by it: a key must land where Java producers put it."""
    assert murmur2(key) & 0xFFFFFFFF == java & 0xFFFFFFFF


# --- Consuming: the PartitionRecords swap -------------------------------------------------------


def _fetched(value_deserializer: object) -> object:
    """aiokafka's fetcher's records of one fetched partition: two batches, keys, headers, an
    empty value, the first offset below the fetch position (skipped, as in a compacted log)."""
    data = bytearray()
    offset = 0
    for size in (3, 4):
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, 0, 1 << 20)
        for i in range(size):
            value = None if offset == 5 else b"v%d" % offset
            headers = [("ce_id", b"%d" % offset)] if offset % 2 else []
            builder.append(i, T0 + offset, b"k%d" % offset, value, headers)
            offset += 1
        batch = builder.build()
        # The batch's base offset, which the broker sets.
        batch[0:8] = (offset - size).to_bytes(8, "big")
        data += batch
    return fetcher.PartitionRecords(
        TP, MemoryRecords(bytes(data)), [], 1, None, value_deserializer, True, 0
    )


def test_a_raw_consumers_records_are_the_readers_own_and_others_get_consumer_records() -> None:
    install_raw_records()
    install_raw_records()  # idempotent
    raw, plain = _fetched(raw_value), _fetched(None)
    raw_records, plain_records = list(raw), list(plain)  # type: ignore[call-overload]
    assert all(isinstance(r, ConsumerRecord) for r in plain_records)
    assert not any(isinstance(r, ConsumerRecord) for r in raw_records)
    assert [consumer_record(TP, r) for r in raw_records] == plain_records
    assert [r.offset for r in plain_records] == list(range(1, 7))
    assert raw.next_fetch_offset == plain.next_fetch_offset == 7  # type: ignore[attr-defined]


def test_a_raw_consumers_records_one_at_a_time() -> None:
    """``getone()`` takes records through ``__next__``; then iterating takes the rest."""
    install_raw_records()
    raw, plain = _fetched(raw_value), _fetched(None)
    first = next(raw)  # type: ignore[call-overload]
    rest = list(raw)  # type: ignore[call-overload]
    assert [consumer_record(TP, r) for r in [first, *rest]] == list(plain)  # type: ignore[call-overload]


# --- Metrics: observe_many ----------------------------------------------------------------------

BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def _samples(h: Histogram) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in h.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@given(st.lists(st.tuples(st.floats(0, 1000, allow_nan=False), st.integers(0, 50)), max_size=20))
def test_observe_many_equals_repeated_observe(groups: list[tuple[float, int]]) -> None:
    one = Histogram("a", "a", buckets=BUCKETS, registry=CollectorRegistry())
    many = Histogram("a", "a", buckets=BUCKETS, registry=CollectorRegistry())
    for amount, count in groups:
        for _ in range(count):
            one.observe(amount)
        observe_many(many, amount, count)
    got, want = _samples(many), _samples(one)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), key


def test_observe_many_refuses_a_labelled_parent_as_observe_does() -> None:
    h = Histogram("a", "a", ["route"], buckets=BUCKETS, registry=CollectorRegistry())
    with pytest.raises(ValueError, match="missing label values"):
        h.observe(1.0)
    with pytest.raises(ValueError, match="missing label values"):
        observe_many(h, 1.0, 3)
