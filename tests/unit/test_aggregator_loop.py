"""The aggregator loop on fake clients: it yields to the event loop after every poll even when
records are always ready, and alarms go out on the events producer, windows on the other."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterable
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.structs import OffsetAndMetadata
from support.aggregator import Committed

from services.telemetry.aggregator.collector import GC_YOUNG_THRESHOLD, tune_gc
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.aggregator.metadata import decode_idle, decode_metadata, encode_metadata
from services.telemetry.aggregator.scheduler import EMIT_CHUNK, SEAL_MAX_WINDOWS, SEAL_SLICE_S
from services.telemetry.engine.monitor import Monitor
from services.telemetry.kafka.batch_send import PreparedBatches
from services.telemetry.kafka.record_batch import decoded_record
from services.telemetry.rules.book import parse_rules
from services.telemetry.settings import TelemetrySettings

TOPIC = "telemetry.readings.v1"
TP = TopicPartition(TOPIC, 0)
BOOK = parse_rules(
    {"alarms": [{"id": "hot", "severity": "major", "when": {"metric": "t", "above": 90}}]}
)


def _done() -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


class Producer:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.batched = 0

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append(topic)
        return _done()

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def send_batch(self, batch: Any, topic: str, partition: int) -> asyncio.Future[None]:
        self.batched += batch.record_count()
        batch.close()
        return _done()


class Consumer:
    """Always has records ready, and never suspends in getmany (like a full fetch buffer)."""

    def __init__(self, polls: int, stop: asyncio.Event) -> None:
        self.committed = Committed()  # what the group holds, read back at a restore
        self.polls, self.stop, self.offset = polls, stop, 0

    def subscribe(self, topics: list[str], listener: Any) -> None:
        pass

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.polls -= 1
        if self.polls <= 0:
            self.stop.set()
        records = []
        for _ in range(10):
            ts = 1_700_000_000_000 + self.offset * 1000
            value = orjson.dumps(
                {"device_id": "press-1", "readings": [{"metric": "t", "ts": ts, "value": 95.0}]}
            )
            records.append(
                ConsumerRecord(TOPIC, 0, self.offset, 0, 0, b"press-1", value, None, 7, 0, ())
            )
            self.offset += 1
        return {TP: records}

    async def commit(self, offsets: Any) -> None:
        pass

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    def assignment(self) -> set[TopicPartition]:
        return {TP}


async def test_the_loop_yields_after_every_poll_and_alarms_use_their_own_producer() -> None:
    stop = asyncio.Event()
    consumer = Consumer(polls=50, stop=stop)
    windows, events = Producer(), Producer()
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, windows),
        Monitor(BOOK, 5000),
        cast(AIOKafkaProducer, events),
        fetch_committed=consumer.committed,
    )
    turns = 0

    async def other_task() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_task())
    await asyncio.wait_for(agg.run(stop), 10)
    await other
    assert turns >= 45  # another task ran between (nearly) every two polls
    assert events.sent == ["telemetry.alarms.v1"]  # raised once, never cleared
    assert windows.sent == []
    assert windows.batched > 0  # 500 s of readings: windows of 10 s closed and batched


class ScriptedConsumer(Consumer):
    """Returns the given polls, then empty ones."""

    def __init__(self, polls: list[list[ConsumerRecord]]) -> None:
        super().__init__(polls=len(polls), stop=asyncio.Event())
        self.script = polls

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        return {TP: self.script.pop(0)} if self.script else {}


def _ten_second(consumer: ScriptedConsumer) -> Aggregator:
    """An aggregator of 10 s windows over ``consumer`` (fake Kafka clients)."""
    return Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, Producer()),
        fetch_committed=consumer.committed,
    )


def _record(offset: int, device: str, ts: int, value: float = 1.0) -> ConsumerRecord:
    value_ = orjson.dumps(
        {"device_id": device, "readings": [{"metric": "t", "ts": ts, "value": value}]}
    )
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, device.encode(), value_, None, 7, 0, ())


async def test_a_boundary_is_emitted_in_slices_and_every_window_once() -> None:
    devices = [f"press-{i}" for i in range(2 * EMIT_CHUNK + 10)]
    t0 = 1_700_000_000_000
    first = [_record(i, d, t0 + 1000) for i, d in enumerate(devices)]
    closing = [_record(len(devices), devices[0], t0 + 16_000)]  # watermark past 10 s + 5 s
    windows = Producer()
    consumer = ScriptedConsumer([first, closing])
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, windows),
        fetch_committed=consumer.committed,
    )
    agg.scheduler.emit_slice_s = 0.0  # one chunk per poll
    emitted, backlog, open_windows = [], [], []
    for _ in range(8):
        await agg.process(await consumer.getmany(0, 5000))
        await agg.commit()  # awaits the handed-over batches
        emitted.append(windows.batched)
        backlog.append(agg.backlog)
        open_windows.append(agg.partitions[TP].windows.open_count)
    # The boundary's 2 * EMIT_CHUNK + 10 windows left in chunks of EMIT_CHUNK, one per poll;
    # then the same chunks were retired (taken off the open windows), one per poll.
    n = len(devices)
    assert emitted == [0, EMIT_CHUNK, 2 * EMIT_CHUNK, n, n, n, n, n]
    assert open_windows == [n, n + 1, n + 1, n + 1, 511, 11, 1, 1]
    assert backlog == [False, True, True, True, True, True, False, False]


class SilentEvents(Producer):
    """Takes events but never acknowledges them."""

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append(topic)
        return asyncio.get_running_loop().create_future()


def with_alarms(consumer: Consumer, events: Producer) -> Aggregator:
    """An aggregator of 10 s windows with the alarm rule ``hot`` and its own events producer."""
    return Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, Producer()),
        Monitor(BOOK, 5000),
        cast(AIOKafkaProducer, events),
        fetch_committed=consumer.committed,
    )


async def test_a_poll_waits_only_briefly_for_its_alarms_to_leave() -> None:
    t0 = 1_700_000_000_000
    events = SilentEvents()
    consumer = ScriptedConsumer([[_record(0, "press-1", t0), _record(1, "press-1", t0, 95.0)]])
    agg = with_alarms(consumer, events)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await agg.process(await consumer.getmany(0, 5000))
    assert events.sent == ["telemetry.alarms.v1"]
    # Bounded by EVENTS_HANDOFF_S, not by an acknowledgement that never comes.
    assert loop.time() - started < 1.0


class SlowCommits(ScriptedConsumer):
    """Each Kafka commit takes until ``release`` is set."""

    def __init__(self, polls: list[list[ConsumerRecord]]) -> None:
        super().__init__(polls)
        self.release = asyncio.Event()
        self.started: list[dict[Any, Any]] = []
        self.finished: list[dict[Any, Any]] = []

    async def commit(self, offsets: Any) -> None:
        self.started.append(offsets)
        await self.release.wait()
        self.finished.append(offsets)


async def test_a_background_commit_does_not_hold_the_loop_and_commits_stay_in_order() -> None:
    t0 = 1_700_000_000_000
    consumer = SlowCommits([[_record(0, "press-1", t0)], [_record(1, "press-1", t0 + 1)]])
    agg = _ten_second(consumer)
    await agg.process(await consumer.getmany(0, 5000))
    await asyncio.wait_for(agg.commit(background=True), 1)  # returns with the commit in flight
    await asyncio.sleep(0)
    assert len(consumer.started) == 1
    assert consumer.finished == []
    await agg.process(await consumer.getmany(0, 5000))  # the loop goes on meanwhile
    second = asyncio.ensure_future(agg.commit())
    await asyncio.sleep(0.01)
    assert len(consumer.started) == 1  # the next commit waits for the one in flight
    consumer.release.set()
    await asyncio.wait_for(second, 1)
    assert [next(iter(c.values()))[0] for c in consumer.finished] == [0, 0]
    assert len(consumer.started) == 2


async def test_a_revoke_waits_for_the_commit_in_flight() -> None:
    consumer = SlowCommits([[_record(0, "press-1", 1_700_000_000_000)]])
    agg = _ten_second(consumer)
    await agg.process(await consumer.getmany(0, 5000))
    await agg.commit(background=True)
    revoke = asyncio.ensure_future(agg.wait_for_commit())
    await asyncio.sleep(0.01)
    assert not revoke.done()
    consumer.release.set()
    await asyncio.wait_for(revoke, 1)
    assert len(consumer.finished) == 1


async def test_ended_windows_are_sealed_in_idle_polls_only() -> None:
    t0 = 1_700_000_000_000
    ended = [_record(i, f"press-{i}", t0 + 1000) for i in range(3)]
    # Watermark 4.6 s past the windows' end: ended, past the seal point (half the 5 s lateness),
    # past the point by which paced sealing seals them all (SEAL_FINISH_MS before the deadline),
    # not due.
    later = [_record(3, "press-0", t0 + 14_600), _record(4, "press-0", t0 + 14_601)]
    sealed_after = []
    for max_poll in (2, 100):  # the second poll is full, then not
        consumer = ScriptedConsumer([list(ended), list(later)])
        agg = Aggregator(
            TelemetrySettings(
                telemetry_event_time="partition",
                kafka_bootstrap="127.0.0.1:9",
                telemetry_windows="10s",
                telemetry_max_poll_records=max_poll,
            ),
            cast(AIOKafkaConsumer, consumer),
            cast(AIOKafkaProducer, Producer()),
            fetch_committed=consumer.committed,
        )
        for _ in range(2):
            await agg.process(await consumer.getmany(0, 5000))
        windows = next(iter(agg.partitions.values())).windows
        sealed_after.append(sum(w.sealed_count >= 0 for w in windows.open.values()))
    assert sealed_after == [0, 3]  # a full poll is catching up: no idle time to seal in


async def test_sealing_is_paced_over_the_lateness() -> None:
    """Half-way from the seal point (end + 2.5 s) to SEAL_FINISH_MS before the deadline
    (end + 4.5 s), half of the ended windows are sealed; the rest follow by then."""
    t0 = 1_700_000_000_000
    ended = [_record(i, f"press-{i}", t0 + 1000) for i in range(10)]
    polls = [ended, [_record(10, "press-0", t0 + 13_499)], [_record(11, "press-0", t0 + 14_500)]]
    consumer = ScriptedConsumer(polls)
    agg = _ten_second(consumer)
    sealed = []
    for _ in range(3):
        await agg.process(await consumer.getmany(0, 5000))
        windows = next(iter(agg.partitions.values())).windows
        sealed.append(sum(w.sealed_count >= 0 for w in windows.open.values() if w.start == t0))
    assert sealed == [0, 5, 10]


async def test_sealing_ahead_stops_at_its_cap_and_the_rest_are_made_at_the_close() -> None:
    """With at most 4 windows sealed ahead, 4 of 10 ended windows are sealed; the close emits
    all 10, the same records as with every window sealed."""
    t0 = 1_700_000_000_000
    emitted = []
    for cap in (4, SEAL_MAX_WINDOWS):
        ended = [_record(i, f"press-{i}", t0 + 1000) for i in range(10)]
        polls = [
            ended,
            [_record(10, "press-0", t0 + 14_600)],
            [_record(11, "press-0", t0 + 15_001)],
        ]
        consumer = ScriptedConsumer(polls)
        agg = _ten_second(consumer)
        agg.scheduler.seal_max_windows = cap
        out = _emitted(agg)
        for _ in range(2):
            await agg.process(await consumer.getmany(0, 5000))
        windows = next(iter(agg.partitions.values())).windows
        assert windows.sealed_ahead == min(cap, 10)
        assert sum(w.sealed_count >= 0 for w in windows.open.values() if w.start == t0) == min(
            cap, 10
        )
        await agg.process(await consumer.getmany(0, 5000))
        assert windows.sealed_ahead == 0
        emitted.append(sorted(out))
    assert len(emitted[0]) == 10
    assert emitted[0] == emitted[1]


async def test_a_reading_after_the_seals_makes_their_deadline_again_at_the_close() -> None:
    """Ten windows sealed ahead into batches, then a reading within the lateness for one of
    them: the close makes that deadline's windows again, and emits what a run without sealing
    emits (the late reading in its window)."""
    t0 = 1_700_000_000_000
    emitted = []
    for seal_slice_s in (0.0, SEAL_SLICE_S):
        polls = [
            [_record(i, f"press-{i}", t0 + 1000) for i in range(10)],
            [_record(10, "press-0", t0 + 14_600)],  # every window sealed (paced)
            [_record(11, "press-3", t0 + 2000, 7.0)],  # within the lateness: voids a seal
            [_record(12, "press-0", t0 + 15_001)],  # the close
        ]
        consumer = ScriptedConsumer(polls)
        agg = _ten_second(consumer)
        agg.scheduler.seal_slice_s = seal_slice_s
        out = _emitted(agg)
        for _ in range(3):
            await agg.process(await consumer.getmany(0, 5000))
        part = next(iter(agg.partitions.values()))
        assert len(part.sealed) == (1 if seal_slice_s else 0)
        await agg.process(await consumer.getmany(0, 5000))
        assert part.sealed == {}
        emitted.append(sorted(out))
    assert len(emitted[0]) == 10
    assert emitted[0] == emitted[1]
    assert sum(orjson.loads(value)["count"] == 2 for _, value in emitted[1]) == 1


class CommitsRecorded(ScriptedConsumer):
    """Keeps every commit it is asked for."""

    def __init__(self, polls: list[list[ConsumerRecord]]) -> None:
        super().__init__(polls)
        self.commits: list[Any] = []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(offsets)


async def test_no_commit_while_closed_windows_wait_for_their_emit() -> None:
    """A commit during a boundary spread over several polls would put a watermark past windows
    not yet emitted: a replay from it would take their readings for late and lose them."""
    devices = [f"press-{i}" for i in range(2 * EMIT_CHUNK + 10)]
    t0 = 1_700_000_000_000
    first = [_record(i, d, t0 + 1000) for i, d in enumerate(devices)]
    closing = [_record(len(devices), devices[0], t0 + 16_000)]  # watermark past 10 s + 5 s
    consumer = CommitsRecorded([first, closing])
    agg = _ten_second(consumer)
    agg.scheduler.emit_slice_s = 0.0  # one chunk per poll
    committed = []
    for _ in range(8):
        await agg.process(await consumer.getmany(0, 5000))
        await agg.commit()
        committed.append(consumer.commits[-1][TP] if consumer.commits else None)
        consumer.commits.clear()
    # Poll 1: the windows open (offset 0 holds them). Polls 2 to 4 emit the due windows and
    # polls 5 and 6 retire them in chunks, leaving windows due: no commit. Poll 7 retires the
    # last chunk, and the commit passes the boundary.
    assert committed == [
        (0, f"wm={t0 + 1000}"),
        None,
        None,
        None,
        None,
        None,
        (len(devices), f"wm={t0 + 16_000}"),
        None,
    ]


@pytest.fixture
def clock() -> list[int]:
    """The aggregator's wall clock in ms, as a cell the test moves (``Aggregator(clock=...)``)."""
    return [1_800_000_000_000]


class QuietAfterOnePoll(CommitsRecorded):
    """One poll of records, then quiet polls; the wall clock jumps 20 s at the third poll, and
    the loop stops at the tenth."""

    def __init__(self, polls: list[list[ConsumerRecord]], clock: list[int]) -> None:
        super().__init__(polls)
        self.clock, self.polls_seen = clock, 0
        self.committed_after_poll: list[int] = []

    async def commit(self, offsets: Any) -> None:
        self.committed_after_poll.append(self.polls_seen)
        await super().commit(offsets)

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.polls_seen += 1
        if self.polls_seen == 3:
            self.clock[0] += 20_000
        if self.polls_seen == 10:
            self.stop.set()
        return await super().getmany(timeout_ms, max_records)


async def test_windows_closed_by_the_idle_clock_are_committed_once_acknowledged(
    clock: list[int],
) -> None:
    """A replay sees no idle time: until a commit carries the watermark the wall clock moved,
    a crash would let a late reading into the windows it closed (docs/decisions/0002)."""
    t0 = 1_700_000_000_000
    consumer = QuietAfterOnePoll([[_record(0, "press-1", t0 + 1000)]], clock)
    windows = Producer()
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition",
            kafka_bootstrap="127.0.0.1:9",
            telemetry_windows="10s",
            telemetry_idle_close_ms=2000,
            telemetry_commit_interval_ms=60_000,  # the interval plays no part
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, windows),
        clock=lambda: clock[0],
        fetch_committed=consumer.committed,
    )
    await asyncio.wait_for(agg.run(consumer.stop), 10)
    assert windows.batched == 1  # the window closed by the idle clock
    # Before the advance, the offset of the window's reading with the watermark before it and
    # the advance pinned to the next offset; then, not only at the stop, the safe offset past
    # the emitted window with the watermark the wall clock advanced (20 s after t0 + 1 s).
    [(pinned, pin), (offset, metadata)] = [commit[TP] for commit in consumer.commits]
    assert pinned == 0
    assert decode_metadata(pin) == t0 + 1000
    idle = decode_idle(pin)
    assert idle is not None
    assert idle[0] == 1
    assert idle[1] >= t0 + 1000 + 20_000 - 2000
    assert offset == 1
    assert decode_metadata(metadata) == idle[1]
    assert max(consumer.committed_after_poll) < 10  # the stop had nothing left to commit


def _emitted(agg: Aggregator) -> list[tuple[bytes, bytes]]:
    """Every window record the aggregator queues from now on: (ce_id, value). Records made at
    the close are seen as they are appended; batches prepared ahead, as they are queued (read
    back from a built copy, as the broker would)."""
    out: list[tuple[bytes, bytes]] = []
    extend, add_prepared = agg.scheduler.out.extend, agg.scheduler.out.add_prepared

    def spy(records: Any) -> None:
        records = list(records)
        for r in records:
            _, value, headers = decoded_record(r.record)
            assert value is not None
            out.append((dict(headers)["ce_id"] or b"", value))
        extend(records)

    def spy_prepared(prepared: PreparedBatches, timestamp: int) -> None:
        add_prepared(prepared, timestamp)
        for batch in (b for batches in prepared.batches.values() for b in batches):
            for r in DefaultRecordBatch(batch.peek()):
                assert r.timestamp == timestamp
                out.append((dict(r.headers)["ce_id"], r.value))

    agg.scheduler.out.extend = spy  # type: ignore[method-assign]
    agg.scheduler.out.add_prepared = spy_prepared  # type: ignore[method-assign]
    return out


@pytest.mark.parametrize(
    ("replay_polls", "quiet_mid_replay"), [(1, False), (2, False), (3, False), (4, True)]
)
async def test_a_replay_repeats_the_idle_clock_where_it_moved(
    clock: list[int], replay_polls: int, quiet_mid_replay: bool
) -> None:
    """Windows closed by the idle clock, a late reading for one of them, then a crash before
    the next commit: the replay closes the same windows at the same offset and counts the
    reading late again, instead of putting it into the window (docs/decisions/0002). A pause
    in the replay before it reaches that offset moves no idle clock: the run it replays had
    none there."""
    t0 = 1_700_000_000_000
    records = [
        _record(0, "press-1", t0 + 1000, 1.0),
        _record(1, "press-2", t0 + 1500, 2.0),
        _record(2, "press-1", t0 + 2000, 50.0),  # arrives after the idle close: late
        _record(3, "press-3", t0 + 40_000, 3.0),
    ]
    settings = TelemetrySettings(
        telemetry_event_time="partition",
        kafka_bootstrap="127.0.0.1:9",
        telemetry_windows="10s",
        telemetry_idle_close_ms=2000,
    )
    consumer = CommitsRecorded([])
    first = Aggregator(
        settings,
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, Producer()),
        clock=lambda: clock[0],
        fetch_committed=consumer.committed,
    )
    emitted_first = _emitted(first)
    await first.process({TP: records[:2]})
    await first.commit()
    clock[0] += 20_000  # 20 s of quiet: the idle clock closes [t0, t0 + 10 s)
    await first.process({})
    assert len(emitted_first) == 2
    await first.process({TP: records[2:]})  # the late reading, then a later one; no commit
    # The crash: the last commit is the one made before the idle clock moved.
    last = consumer.commits[-1][TP]
    assert decode_idle(last[1]) is not None

    consumer2 = CommitsRecorded([])
    consumer2.committed.offsets[TP] = last
    second = Aggregator(
        settings,
        cast(AIOKafkaConsumer, consumer2),
        cast(AIOKafkaProducer, Producer()),
        clock=lambda: clock[0],
        fetch_committed=consumer2.committed,
    )
    emitted_second = _emitted(second)
    replay = records[last[0] :]
    size = -(-len(replay) // replay_polls)
    for i in range(0, len(replay), size):
        await second.process({TP: replay[i : i + size]})
        if quiet_mid_replay and i == 0:
            clock[0] += 20_000
            await second.process({})
    assert emitted_second == emitted_first  # the same windows, bit for bit, same ce_id
    # Both runs hold the same open windows afterwards (the late reading is in none of them).
    assert second.partitions[TP].windows.open == first.partitions[TP].windows.open


class AtPosition(CommitsRecorded):
    """Reports a fixed position and end of the partition."""

    def __init__(self, position: int, highwater: int) -> None:
        super().__init__([])
        self._position, self._highwater = position, highwater

    async def position(self, tp: TopicPartition) -> int:
        return self._position

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater


@pytest.mark.parametrize(("position", "applied"), [(3, True), (2, False)])
async def test_a_pinned_idle_advance_is_applied_once_the_replay_reads_to_the_end(
    clock: list[int], position: int, applied: bool
) -> None:
    """The records before the pin's offset end in a transaction marker (offset 2), which no
    poll returns: read to the end of the partition, the replay applies the pin and the idle
    clock runs again; short of the end it waits for the records still to come."""
    t0 = 1_700_000_000_000
    pinned = t0 + 16_000
    consumer = AtPosition(position, highwater=3)
    consumer.committed.offsets[TP] = (0, encode_metadata(t0 + 1500, (3, pinned)))
    agg = Aggregator(
        TelemetrySettings(
            telemetry_event_time="partition",
            kafka_bootstrap="127.0.0.1:9",
            telemetry_windows="10s",
            telemetry_idle_close_ms=2000,
        ),
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, Producer()),
        clock=lambda: clock[0],
        fetch_committed=consumer.committed,
    )
    emitted = _emitted(agg)
    await agg.process({TP: [_record(0, "press-1", t0 + 1000), _record(1, "press-2", t0 + 1500)]})
    assert agg.partitions[TP].replay_idle == (3, pinned)
    clock[0] += 3000  # quiet for longer than the idle close
    await agg.process({})
    windows = agg.partitions[TP].windows
    if applied:
        assert agg.partitions[TP].replay_idle is None
        assert windows.watermark >= pinned
        assert len(emitted) == 2  # the pin closed both windows, as in the run it replays
    else:
        assert agg.partitions[TP].replay_idle == (3, pinned)
        assert windows.watermark == t0 + 1500
        assert emitted == []


class RevokingCommitted(Committed):
    """The rebalance's revoke runs while the committed offsets are fetched."""

    def __init__(self, consumer: RevokedWhileRestoring) -> None:
        super().__init__()
        self.consumer = consumer

    async def __call__(
        self, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        self.consumer.assigned = set()
        return await super().__call__(consumer, partitions)


class RevokedWhileRestoring(CommitsRecorded):
    """The partition is revoked while its committed offsets are being fetched."""

    def __init__(self, polls: list[list[ConsumerRecord]]) -> None:
        super().__init__(polls)
        self.assigned = {TP}
        self.committed = RevokingCommitted(self)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned


async def test_a_partition_revoked_while_it_is_restored_is_not_taken_up() -> None:
    t0 = 1_700_000_000_000
    consumer = RevokedWhileRestoring([[_record(0, "press-1", t0, 95.0)]])
    events = Producer()
    agg = with_alarms(consumer, events)
    await agg.process(await consumer.getmany(0, 5000))
    await agg.commit()
    assert agg.partitions == {}
    assert agg.monitor.engines == {}
    assert events.sent == []  # its alarm is the next owner's, from the replay
    assert consumer.commits == []  # nothing to commit for a partition no longer owned


async def test_the_alarms_role_raises_alarms_and_leaves_windows_and_dead_letters_alone() -> None:
    t0 = 1_700_000_000_000
    poison = ConsumerRecord(TOPIC, 0, 1, 0, 0, b"press-1", b"{not json", None, 7, 0, ())
    readings = [_record(0, "press-1", t0), poison, _record(2, "press-1", t0 + 20_000, 95.0)]
    consumer = CommitsRecorded([readings])
    windows, events = Producer(), Producer()
    settings = TelemetrySettings(
        telemetry_event_time="partition", kafka_bootstrap="127.0.0.1:9", telemetry_windows="10s"
    ).model_copy(update={"telemetry_role": "alarms"})  # validated: needs rules and a database
    agg = Aggregator(
        settings,
        cast(AIOKafkaConsumer, consumer),
        cast(AIOKafkaProducer, windows),
        Monitor(BOOK, 5000),
        cast(AIOKafkaProducer, events),
        fetch_committed=consumer.committed,
    )
    await agg.process(await consumer.getmany(0, 5000))
    await agg.commit()
    assert events.sent == ["telemetry.alarms.v1"]
    # The windows role emits the windows and dead-letters the poison record; this one neither.
    assert (windows.sent, windows.batched) == ([], 0)
    assert agg.partitions[TP].windows.watermark == t0 + 20_000  # for quiet-partition deadlines
    # No open window holds the commit back: it is the next offset (no snapshot store here).
    assert consumer.commits == [{TP: (3, f"wm={t0 + 20_000}")}]


def test_tune_gc_collects_young_objects_less_often_and_freezes_what_exists() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
