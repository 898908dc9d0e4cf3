"""No record stops a partition: a record that makes a stage raise (decode, adding to the
windows, the alarm rules, encoding its window at the close or ahead of it) goes to the DLQ with
its provenance and the exception, is counted, and every record after it is processed: each
window emitted once, exactly what a run without the failure emits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatch
from support.aggregator import Committed
from support.metrics import sample

from services.telemetry.aggregator import readings, scheduler
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.alarms.instance import AlarmInstance
from services.telemetry.decode_fast import decode_readings_fast
from services.telemetry.emit import WindowRecord, window_record
from services.telemetry.engine.monitor import Monitor
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.kafka.batch_send import PreparedBatches
from services.telemetry.kafka.record_batch import decoded_record
from services.telemetry.rules.book import parse_rules
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows

TOPIC = "telemetry.readings.v1"
TP = TopicPartition(TOPIC, 0)
T0 = 1_700_000_000_000
POISON = 666.0  # the value the injected faults raise for
ERRORS = "millrace_telemetry_processing_errors_total"
BOOK = parse_rules(
    {"alarms": [{"id": "hot", "severity": "major", "when": {"metric": "t", "above": 90}}]}
)


def _done() -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, bytes]]] = []

    async def send(
        self, topic: str, value: bytes | None, key: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append((topic, value, dict(headers)))
        return _done()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[None]:
        batch.close()
        return _done()

    def dlq(self) -> list[dict[str, bytes]]:
        return [headers for topic, _, headers in self.sent if topic == f"{TOPIC}.dlq"]


class Consumer:
    """Returns the given polls, then empty ones."""

    def __init__(self, polls: list[list[ConsumerRecord]]) -> None:
        self.polls = polls
        self.committed = Committed()  # what the group holds, read back at a restore

    def subscribe(self, topics: list[str], listener: Any) -> None:
        pass

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        return {TP: self.polls.pop(0)} if self.polls else {}

    async def commit(self, offsets: Any) -> None:
        pass

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TP}


def _record(offset: int, device: str, readings: list[tuple[int, float]]) -> ConsumerRecord:
    value = orjson.dumps(
        {
            "device_id": device,
            "readings": [{"metric": "t", "ts": t, "value": v} for t, v in readings],
        }
    )
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, device.encode(), value, None, 7, 0, ())


def _polls(poison: bool) -> list[list[ConsumerRecord]]:
    """Three devices' readings in two polls, a record of a fourth device in the middle of the
    first (with a POISON reading, or without when ``poison`` is false), readings of the three
    after it; then the watermark 4.6 s past their 10 s windows' end (sealed ahead, when the
    aggregator seals) and a last poll that closes them (lateness 5 s)."""
    value = POISON if poison else 1.0
    first = [
        _record(0, "d0", [(T0 + 1000, 1.0)]),
        _record(1, "d1", [(T0 + 1100, 2.0), (T0 + 1200, 3.0)]),
        _record(2, "bad", [(T0 + 1300, 4.0), (T0 + 1400, value), (T0 + 1500, 5.0)]),
        _record(3, "d2", [(T0 + 1600, 95.0)]),
        _record(4, "d0", [(T0 + 1700, 6.0)]),
    ]
    second = [_record(5, "d1", [(T0 + 9000, 7.0)]), _record(6, "d2", [(T0 + 9500, 8.0)])]
    ended = [_record(7, "d0", [(T0 + 14_600, 9.0)])]
    closing = [_record(8, "d0", [(T0 + 25_000, 9.0)])]
    return [first, second, ended, closing]


async def _run(poison: bool, *, seal: bool = False) -> tuple[Aggregator, Producer, list[Any]]:
    """Every window the aggregator emits, as (ce_id, payload), with the DLQ records it sent."""
    producer, events = Producer(), Producer()
    consumer = Consumer(_polls(poison))
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, producer),
        Monitor(BOOK, 5000),
        cast(AIOKafkaProducer, events),
        fetch_committed=consumer.committed,
    )
    agg.scheduler.seal_slice_s = scheduler.SEAL_SLICE_S if seal else 0.0
    emitted = _emitted(agg)
    for _ in range(5):
        await agg.process(await consumer.getmany(0, 5000))
        await agg.commit()
    return agg, producer, sorted(emitted)


def _emitted(agg: Aggregator) -> list[tuple[bytes, dict[str, Any]]]:
    out: list[tuple[bytes, dict[str, Any]]] = []
    extend, add_prepared = agg.scheduler.out.extend, agg.scheduler.out.add_prepared

    def spy(records: Any) -> None:
        records = list(records)
        for r in records:
            _, value, headers = decoded_record(r.record)
            out.append((dict(headers)["ce_id"] or b"", orjson.loads(value or b"")))
        extend(records)

    def spy_prepared(prepared: PreparedBatches, timestamp: int) -> None:
        add_prepared(prepared, timestamp)
        for batch in (b for batches in prepared.batches.values() for b in batches):
            built = DefaultRecordBatch(batch.peek())
            out.extend((dict(r.headers)["ce_id"], orjson.loads(r.value)) for r in built)

    agg.scheduler.out.extend = spy  # type: ignore[method-assign]
    agg.scheduler.out.add_prepared = spy_prepared  # type: ignore[method-assign]
    return out


def _without(windows: list[Any], device: str) -> list[Any]:
    return [w for w in windows if w[1]["device_id"] != device]


def _raise_on_poison(value: float) -> None:
    if value == POISON:
        raise RuntimeError("injected fault")


def _poisoned_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    decode = decode_readings_fast

    def decode_or_raise(value: bytes | None, *args: Any) -> Any:
        if value and b"666" in value:
            raise RuntimeError("injected fault")
        return decode(value, *args)

    monkeypatch.setattr(readings, "decode_readings_fast", decode_or_raise)


def _poisoned_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    # A new series' first reading takes PartitionWindows._add (the inlined update takes the
    # next ones): "bad"'s first reading raises there, before anything of it is added. A private
    # method on purpose: the public add_records() takes a whole poll, and a fault there would
    # fail every record of it, not the one record this test is about.
    add = PartitionWindows._add

    def add_or_raise(self: PartitionWindows, series: Any, key: tuple[str, str], *args: Any) -> int:
        if key[0] == "bad":
            raise RuntimeError("injected fault")
        return add(self, series, key, *args)

    monkeypatch.setattr(PartitionWindows, "_add", add_or_raise)


def _poisoned_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    observe = PartitionEngine.observe

    def observe_or_raise(self: PartitionEngine, device: str, metric: str, *args: Any) -> None:
        _raise_on_poison(args[1])
        observe(self, device, metric, *args)

    monkeypatch.setattr(PartitionEngine, "observe", observe_or_raise)


def _poisoned_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    make = window_record

    def make_or_raise(w: ClosedWindow) -> WindowRecord:
        if w.device_id == "bad":
            raise ValueError("injected fault")
        return make(w)

    monkeypatch.setattr(scheduler, "window_record", make_or_raise)


Inject = Callable[[pytest.MonkeyPatch], None]


@pytest.mark.parametrize(
    ("stage", "inject"),
    [("decode", _poisoned_decoder), ("windows", _poisoned_windows)],
)
async def test_a_record_that_fails_is_dead_lettered_and_left_out(
    monkeypatch: pytest.MonkeyPatch, stage: str, inject: Inject
) -> None:
    _, _, clean = await _run(poison=False)
    inject(monkeypatch)
    before = sample(ERRORS, stage=stage)
    agg, producer, emitted = await _run(poison=True)
    [dlq] = producer.dlq()
    assert dlq["dlq_reason"] == b"processing_error"
    assert dlq["dlq_error"].startswith(f"{stage}: RuntimeError: injected fault".encode())
    assert (dlq["dlq_source_topic"], dlq["dlq_source_offset"]) == (TOPIC.encode(), b"2")
    assert sample(ERRORS, stage=stage) == before + 1
    assert agg.processing_errors == 1
    # Every other device's windows once, as without the poison; none of "bad"'s
    assert emitted == _without(clean, "bad")
    assert len(emitted) == 4  # d0, d1, d2 and d0's next window


async def test_a_record_the_alarm_rules_fail_on_is_dead_lettered_and_still_aggregated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, clean_producer, _ = await _run(poison=True)
    _poisoned_rules(monkeypatch)
    agg, producer, emitted = await _run(poison=True)
    assert agg.processing_errors == 1
    [dlq] = producer.dlq()
    assert dlq["dlq_error"] == b"alarms: RuntimeError: injected fault"
    assert dlq["dlq_source_offset"] == b"2"
    assert len(emitted) == 5  # "bad" included: its readings are good for the windows
    assert [w[1]["count"] for w in emitted if w[1]["device_id"] == "bad"] == [3]
    assert clean_producer.dlq() == []


@pytest.mark.parametrize("seal", [False, True])
async def test_a_window_that_cannot_be_encoded_is_reported_and_the_rest_emitted(
    monkeypatch: pytest.MonkeyPatch, seal: bool
) -> None:
    sealed = sample("millrace_telemetry_windows_sent_sealed_total")
    _, _, clean = await _run(poison=False, seal=seal)
    assert sample("millrace_telemetry_windows_sent_sealed_total") - sealed == (4 if seal else 0)
    _poisoned_encoder(monkeypatch)
    agg, producer, emitted = await _run(poison=False, seal=seal)
    [dlq] = producer.dlq()
    assert dlq["dlq_error"] == (
        f"emit: window bad/t/10000ms/{T0}: ValueError: injected fault".encode()
    )
    assert dlq["dlq_source_offset"] == b"2"  # the window's first reading
    assert emitted == _without(clean, "bad")
    # The window counts as emitted: its partition's commit moves past it.
    part = agg.partitions[TP]
    assert part.windows.safe_offset(part.next_offset) == 8  # the closing record's window


async def test_a_rule_that_raises_at_its_deadline_is_reported_and_the_other_deadlines_fire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A deadline has no record to dead-letter: it is dropped, counted and logged, and the
    partition's other deadlines (and later polls) go on."""
    book = parse_rules(
        {
            "alarms": [
                {
                    "id": "hot",
                    "severity": "major",
                    "when": {"metric": "t", "above": 90, "for": "2s"},
                }
            ]
        }
    )
    monitor = Monitor(book, 0)
    await monitor.restore([TP])
    engine = monitor.engine(TP)
    for offset, device in enumerate(["bad", "good"]):
        engine.observe(device, "t", T0, 95.0, offset)
    evaluate = AlarmInstance.evaluate

    def evaluate_or_raise(self: AlarmInstance, t: int, at: int, out: list[Any]) -> int | None:
        if self.device == "bad" and t == at == T0 + 2000:  # at its deadline
            raise RuntimeError("injected fault")
        return evaluate(self, t, at, out)

    monkeypatch.setattr(AlarmInstance, "evaluate", evaluate_or_raise)
    before = sample(ERRORS, stage="alarms")
    events = Producer()
    await monitor.flush(cast(AIOKafkaProducer, events), TP, T0 + 3000, now_ms=T0 + 3000)
    assert [orjson.loads(value or b"")["device_id"] for _, value, _ in events.sent] == ["good"]
    assert sample(ERRORS, stage="alarms") == before + 1
    assert engine.failures == []  # reported
    await monitor.flush(cast(AIOKafkaProducer, events), TP, T0 + 9000, now_ms=T0 + 9000)
    assert len(events.sent) == 1  # dropped, not retried


class Restarting(Consumer):
    """Keeps its commits, and hands ``committed`` (offset, metadata) over on restore, as the
    group coordinator does after a crash."""

    def __init__(
        self,
        polls: list[list[ConsumerRecord]],
        committed: dict[TopicPartition, tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(polls)
        self.commits: dict[TopicPartition, Any] = {}
        self.committed = Committed(committed)

    async def commit(self, offsets: Any) -> None:
        self.commits.update(offsets)


def _aggregator(consumer: Consumer, producer: Producer) -> Aggregator:
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, producer),
        Monitor(BOOK, 5000),
        cast(AIOKafkaProducer, Producer()),
        fetch_committed=consumer.committed,
    )
    agg.scheduler.seal_slice_s = scheduler.SEAL_SLICE_S
    return agg


async def _drive(agg: Aggregator, consumer: Consumer, polls: int) -> None:
    for _ in range(polls):
        await agg.process(await consumer.getmany(0, 5000))
        await agg.commit()


@pytest.mark.parametrize("cut", [1, 2, 3])
@pytest.mark.parametrize(
    "inject", [_poisoned_decoder, _poisoned_windows, _poisoned_rules, _poisoned_encoder]
)
async def test_a_replay_after_a_crash_dead_letters_the_same_and_emits_the_same(
    monkeypatch: pytest.MonkeyPatch, inject: Inject, cut: int
) -> None:
    """A crash after ``cut`` polls, and a replay from the committed offset and watermark, one
    record per poll: each window emitted twice is the same record, and together the two runs
    emit what a run without the crash emits and dead-letter the same records with the same
    errors."""
    inject(monkeypatch)
    producer = Producer()
    consumer = Restarting(_polls(poison=True))
    agg = _aggregator(consumer, producer)
    whole = _emitted(agg)
    await _drive(agg, consumer, 5)
    want_dlq = sorted((h["dlq_source_offset"], h["dlq_error"]) for h in producer.dlq())
    assert len(want_dlq) == 1

    first = Restarting(_polls(poison=True))
    crashed, replayed = Producer(), Producer()
    agg = _aggregator(first, crashed)
    got = _emitted(agg)
    await _drive(agg, first, cut)
    offset, metadata = first.commits[TP]
    rest = [r for poll in _polls(poison=True) for r in poll if r.offset >= offset]
    second = Restarting([[r] for r in rest], {TP: (offset, metadata)})
    agg = _aggregator(second, replayed)
    again = _emitted(agg)
    await _drive(agg, second, len(rest) + 2)
    got += again

    by_id = dict(got)
    assert all(by_id[ce_id] == payload for ce_id, payload in got)  # a duplicate is the same
    assert sorted(by_id.items()) == sorted(dict(whole).items())
    dead = {(h["dlq_source_offset"], h["dlq_error"]) for h in crashed.dlq() + replayed.dlq()}
    assert sorted(dead) == want_dlq


async def test_invalid_and_failing_records_are_dead_lettered_in_offset_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _poisoned_decoder(monkeypatch)
    invalid = [
        ConsumerRecord(TOPIC, 0, offset, 0, 0, b"d0", b"{not json", None, 7, 0, ())
        for offset in (0, 2)
    ]
    poll = [invalid[0], _record(1, "bad", [(T0, POISON)]), invalid[1], _record(3, "d0", [(T0, 1)])]
    producer = Producer()
    agg = _aggregator(Consumer([poll]), producer)
    await agg.process({TP: poll})
    assert [(h["dlq_source_offset"], h["dlq_reason"]) for h in producer.dlq()] == [
        (b"0", b"undecodable"),
        (b"1", b"processing_error"),
        (b"2", b"undecodable"),
    ]
    assert agg.partitions[TP].windows.open_count == 1  # d0's reading
