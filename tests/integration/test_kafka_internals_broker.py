"""The reaches of ``services/telemetry/kafka/internals.py`` that need a real broker.

Raw consumer records: the same records, offsets and positions as aiokafka's own
``ConsumerRecord``s, through compressed and transactional batches, aborted transactions and
control records; and consumers that did not ask for them still get ``ConsumerRecord``s.
``fetch_committed``: a group's committed offsets with the metadata committed with them."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from conftest import NewTopicFactory

from services.telemetry.kafka.internals import fetch_committed
from services.telemetry.kafka.records import RawRecord, consumer_record, make_raw_consumer
from shared.kafka import make_consumer
from shared.settings import ServiceSettings

Drained = tuple[list[ConsumerRecord[bytes, bytes]], list[RawRecord], int]


async def _fill(bootstrap: str, topic: str) -> int:
    """Plain, compressed, committed and aborted records, with keys, headers and empty values;
    returns the end offset."""
    plain = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=5)
    await plain.start()
    try:
        futures = [
            await plain.send(
                topic,
                value=f"plain-{i}".encode() if i % 7 else None,
                key=None if i % 5 == 0 and i % 7 else f"k{i % 3}".encode(),
                headers=[("h", b"1"), ("ce_id", str(i).encode())] if i % 2 else [],
                timestamp_ms=1_700_000_000_000 + i,
            )
            for i in range(60)
        ]
        for f in futures:
            await f
    finally:
        await plain.stop()
    tx = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic}-tx")
    await tx.start()
    try:
        for commit in (True, False, True):
            await tx.begin_transaction()
            for i in range(5):
                await tx.send(topic, value=f"tx-{commit}-{i}".encode(), key=b"tx")
            await (tx.commit_transaction() if commit else tx.abort_transaction())
        async with tx.transaction():
            meta = await (await tx.send(topic, value=b"last", key=b"last"))
    finally:
        await tx.stop()
    return int(meta.offset) + 2  # the last transaction's marker follows it


async def _drain(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> Drained:
    await consumer.start()
    try:
        consumer.assign([tp])
        records: list[RawRecord] = []
        # Polls of a few records and single ones too: a fetch's records are taken in parts.
        polls = 0
        while await consumer.position(tp) < end:
            polls += 1
            # (getone() waits for a record: not where only transaction markers may be left.)
            if polls % 3 == 0 and await consumer.position(tp) < end - 10:
                records.append(await consumer.getone(tp))
                continue
            for got in (await consumer.getmany(tp, timeout_ms=500, max_records=7)).values():
                records += got
        full = [r if isinstance(r, ConsumerRecord) else consumer_record(tp, r) for r in records]
        return full, records, await consumer.position(tp)
    finally:
        await consumer.stop()


async def test_raw_records_are_aiokafkas_records_without_the_wrapper(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic()
    tp = TopicPartition(topic, 0)
    end = await _fill(kafka_bootstrap, topic)
    settings = ServiceSettings(service_name="test", kafka_bootstrap=kafka_bootstrap)

    raw, raw_objects, raw_position = await _drain(
        make_raw_consumer(settings, group_id=f"{topic}-raw"), tp, end
    )
    # A consumer made after the install, without the marker, still gets ConsumerRecords.
    full, full_objects, full_position = await _drain(
        make_consumer(settings, group_id=f"{topic}-full"), tp, end
    )

    assert all(isinstance(r, ConsumerRecord) for r in full_objects)
    assert not any(isinstance(r, ConsumerRecord) for r in raw_objects)
    # 60 plain, two committed transactions of 5 and the last record; aborted ones skipped.
    assert len(full) == 71
    values = [r.value for r in full]
    assert b"tx-False-0" not in values
    assert values[-1] == b"last"
    assert [_fields(r) for r in raw] == [_fields(r) for r in full]
    assert raw_position == full_position == end


def _fields(r: ConsumerRecord[bytes, bytes]) -> tuple[object, ...]:
    return (
        r.topic,
        r.partition,
        r.offset,
        r.timestamp,
        r.timestamp_type,
        r.key,
        r.value,
        r.serialized_key_size,
        r.serialized_value_size,
        tuple(r.headers),
    )


async def test_fetch_committed_returns_the_committed_metadata(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    """The window checkpoint rides in the commit's metadata (docs/decisions/0002-window-
    recovery.md); a restore reads it back, and a partition without a commit has none."""
    topic = await new_topic(partitions=2)
    committed_tp, other_tp = TopicPartition(topic, 0), TopicPartition(topic, 1)
    settings = ServiceSettings(service_name="test", kafka_bootstrap=kafka_bootstrap)
    consumer = make_consumer(settings, group_id=f"{topic}-g")
    await consumer.start()
    try:
        consumer.assign([committed_tp, other_tp])
        await consumer.commit({committed_tp: (17, "w=1700000000000;idle=3@5")})
        got = await fetch_committed(consumer, [committed_tp, other_tp])
        assert got[committed_tp] == OffsetAndMetadata(17, "w=1700000000000;idle=3@5")
        assert other_tp not in got
        # The public call: the same offset, without the metadata.
        assert await consumer.committed(committed_tp) == 17
    finally:
        await consumer.stop()
