"""The consume loop and the :class:`Aggregator` facade that wires the package together: one
``getmany`` poll at a time, each partition's records applied in turn, then the emit slice and
a commit when one is due (the order of a poll is in the package docstring)."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.telemetry import metrics as m
from services.telemetry.aggregator.collector import tune_gc
from services.telemetry.aggregator.commit import Committer
from services.telemetry.aggregator.dead_letters import DeadLetters
from services.telemetry.aggregator.failures import Failure
from services.telemetry.aggregator.idle import IdleClock
from services.telemetry.aggregator.partition import Partition, wall_ms
from services.telemetry.aggregator.readings import Rejected, add_records
from services.telemetry.aggregator.restore import FetchCommitted, Listener, Restorer
from services.telemetry.aggregator.scheduler import EmitScheduler
from services.telemetry.emit import AGGREGATES_TOPIC
from services.telemetry.engine.monitor import Monitor
from services.telemetry.kafka.batch_send import BatchSender
from services.telemetry.kafka.internals import fetch_committed
from services.telemetry.kafka.records import RawRecord
from services.telemetry.rules.book import RuleBook
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.devices import LateRecord

READINGS_TOPIC = "telemetry.readings.v1"
# While windows are due, the loop yields this many times between polls: the consumer's fetcher
# needs about that many turns of the event loop (wake, send the fetch, read the response, hand
# the records over), and with one turn per slice a fetch took several slices, so the readings
# (alarm readings too) behind a boundary waited for hundreds of milliseconds.
BACKLOG_YIELDS = 4
# After a partition's records queued alarms or machine states, the loop waits this long at most
# for them to be acknowledged before it goes on (next partition, windows): enough for the events
# producer to put them on the wire.
EVENTS_HANDOFF_S = 0.005
_OFFSET = attrgetter("offset")


class Aggregator:
    """Turns ``telemetry.readings.v1`` into ``telemetry.aggregates.v1``. ``clock``: the wall
    clock in epoch milliseconds, which the idle clock follows (tests pass one they move);
    ``fetch_committed``: how a newly assigned partition's commit is read back, offset and
    metadata (tests pass one that returns the commits they script)."""

    def __init__(
        self,
        settings: TelemetrySettings,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        monitor: Monitor | None = None,
        events_producer: AIOKafkaProducer | None = None,
        *,
        clock: Callable[[], int] = wall_ms,
        fetch_committed: FetchCommitted = fetch_committed,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        # Alarms and machine states go out on their own connection, so that they never queue
        # behind a boundary's window batches (one request in flight per broker connection).
        self.events_producer = events_producer or producer
        self.runs_windows = settings.runs_windows
        self.sizes = settings.window_sizes_ms if self.runs_windows else ()
        self.lateness = settings.telemetry_allowed_lateness_ms
        self.partitions: dict[TopicPartition, Partition] = {}
        self.monitor = monitor or Monitor(RuleBook(), self.lateness)
        self.readings_topic = READINGS_TOPIC
        self.clock = clock
        self._per_device = bool(self.sizes) and settings.telemetry_event_time == "device"
        out = BatchSender(producer, AGGREGATES_TOPIC, compression=settings.kafka_compression)
        self.scheduler = EmitScheduler(self.partitions, out, self.lateness, clock)
        self.committer = Committer(
            consumer, self.partitions, self.monitor, out if self.runs_windows else None
        )
        self.dead_letters = DeadLetters(
            producer,
            settings.service_name,
            self.sizes,
            self.committer.pending,
            runs_windows=self.runs_windows,
        )
        self.restorer = Restorer(
            settings,
            consumer,
            self.monitor,
            self.partitions,
            sizes=self.sizes,
            clock=clock,
            fetch_committed=fetch_committed,
        )
        self.idle = IdleClock(
            consumer,
            self.partitions,
            self.committer,
            self._commit_pinned,
            settings.telemetry_idle_close_ms,
        )
        # Windows were still due after the last poll: poll again without waiting for records.
        self.backlog = False
        self.healthy = False

    @property
    def processing_errors(self) -> int:
        """Records (and windows) whose processing raised, dead-lettered or reported since start."""
        return self.dead_letters.processing_errors

    def subscribe(self) -> None:
        listener = Listener(self.partitions, self.monitor, self.committer)
        self.consumer.subscribe([self.readings_topic], listener=listener)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; then flush and commit what is safe."""
        tune_gc()
        self.subscribe()
        interval = self.settings.telemetry_commit_interval_ms / 1000
        committer = self.committer
        while not stop.is_set():
            batch = await self.consumer.getmany(
                timeout_ms=0 if self.backlog else 200,
                max_records=self.settings.telemetry_max_poll_records,
            )
            await self.process(batch)
            # getmany() returns at once while records are buffered and process() only queues
            # its sends, so without this the loop could run for most of a second without ever
            # letting the producers' sender tasks (alarms!) or the fetcher run.
            for _ in range(BACKLOG_YIELDS if self.backlog else 1):
                await asyncio.sleep(0)
            self.healthy = True
            committer.check()
            if committer.committing is None and committer.due(interval, self.backlog):
                await self.commit(background=True)
        # Clean stop only: after an error nothing is committed and the restart replays.
        self.scheduler.close_all()
        await self._report_window_failures()
        self._flush()
        await self.commit()

    async def process(self, batch: Mapping[TopicPartition, Sequence[RawRecord]]) -> None:
        """Apply one poll's records, send its alarms, then close and queue due windows for at
        most ``emit_slice_s`` (the rest in the next polls, which then do not wait for
        records); window sends are not awaited here."""
        rescanned = await self.restorer.restore(tp for tp in batch if tp not in self.partitions)
        out = self.scheduler.out
        if self.runs_windows and not out.ready:
            await out.refresh()
        now = self.clock()
        for tp, records in batch.items():
            part = self.partitions.get(tp)
            if part is None or tp in rescanned:
                # Revoked while this poll was being applied (the next owner replays), or read
                # again for its device clocks (the next polls bring these records again).
                continue
            await self._apply(tp, part, records, now)
            part.idle_since_ms = now
            part.wm_at_idle = part.windows.watermark
            # A partition's alarms leave before the next partition's records are applied.
            await self._send_events(tp, part)
        for tp, part in list(self.partitions.items()):
            if tp not in batch:
                await self.idle.tick(tp, part, now)
                await self._send_events(tp, part)
        full = sum(map(len, batch.values())) >= self.settings.telemetry_max_poll_records
        # Catching up (a full poll) with a clock per device, every window due leaves before
        # the next poll: a backlog of one reading per window closes as many windows as it
        # brings readings, and held back over slices they would grow with the backlog.
        self.backlog = self.scheduler.emit_slice(catching_up=full and self._per_device)
        await self._report_window_failures()
        # Sealing spends idle time: a consumer catching up (a full poll) has none, and the
        # windows it closes are late anyway.
        if not self.backlog and not full and self.scheduler.seal_slice_s > 0:
            self.scheduler.seal_slice()
        self._flush()
        self._observe(now)

    async def commit(
        self,
        *,
        background: bool = False,
        idle: dict[TopicPartition, tuple[int, int]] | None = None,
    ) -> None:
        """Await every pending send, then commit each partition's safe offset and clock (see
        :meth:`Committer.commit`)."""
        await self.committer.commit(background=background, idle=idle)

    async def wait_for_commit(self) -> None:
        """Wait for a commit in flight (its failure is dropped: a later commit covers it)."""
        await self.committer.wait_in_flight()

    async def _commit_pinned(self, idle: dict[TopicPartition, tuple[int, int]]) -> None:
        await self.commit(idle=idle)

    def _flush(self) -> None:
        """Hand the batches of the windows queued so far to the producer."""
        if not self.scheduler.out.empty:
            self.committer.pending.append(self.scheduler.out.flush())

    async def _report_window_failures(self) -> None:
        if self.scheduler.failures:
            failures = self.scheduler.take_failures()
            await self.dead_letters.windows_failed(failures, self.partitions)

    async def _send_events(self, tp: TopicPartition, part: Partition) -> None:
        """Advance the partition's alarm engine and send its events; then wait a moment for
        the events producer's sender to put them on the wire before the windows' CPU work
        (queued but unsent, they would wait for all of it)."""
        events = await self.monitor.flush(self.events_producer, tp, part.windows.watermark)
        if events:
            self.committer.pending.extend(events)
            await asyncio.wait(events, timeout=EVENTS_HANDOFF_S)

    async def _apply(
        self, tp: TopicPartition, part: Partition, records: Sequence[RawRecord], now: int
    ) -> None:
        if part.replay_idle is not None:
            # A replay: the idle clock moved the watermark before the record at ``offset``.
            offset = part.replay_idle[0]
            i = bisect.bisect_left(records, offset, key=_OFFSET)
            if i:
                await self._apply_records(tp, part, records[:i], now)
            if i < len(records) or part.next_offset >= offset:
                part.release_pin()
            records = records[i:]
        if records:
            await self._apply_records(tp, part, records, now)

    async def _apply_records(
        self, tp: TopicPartition, part: Partition, records: Sequence[RawRecord], now: int
    ) -> None:
        """Decode, alarms and windows in one pass (``readings.py``), then the dead letters
        and late readings of the records, and the metrics, counted once per call."""
        rejected: Rejected = []
        failures: list[Failure] = []
        late: list[LateRecord] = []
        skew, watched = self.settings.telemetry_max_future_skew_ms, self.monitor.metrics
        counts = add_records(
            part, records, now, skew, watched, rejected=rejected, failures=failures, late_out=late
        )
        m.RECORDS.inc(len(records))
        if failures:
            await self.dead_letters.invalid_and_failed(tp, rejected, failures)
        elif rejected:
            await self.dead_letters.invalid(tp, rejected)
        if self.runs_windows:
            readings, bad, late_masks = counts
            m.READINGS.inc(readings)
            if bad:
                m.BAD_QUALITY.inc(bad)
            if late_masks:
                self.dead_letters.count_late(late_masks)
            if late:
                await self.dead_letters.late(tp, part, late)
        if records:
            part.next_offset = records[-1].offset + 1
            part.dirty = True

    def _observe(self, now: int) -> None:
        m.OPEN_WINDOWS.set(sum(p.windows.open_count for p in self.partitions.values()))
        for tp, part in self.partitions.items():
            label = str(tp.partition)
            if part.windows.watermark >= 0:
                m.WATERMARK_LAG.labels(label).set((now - part.windows.watermark) / 1000)
            high = self.consumer.highwater(tp)
            position = part.next_offset
            if high is not None and position >= 0:
                m.CONSUMER_LAG.labels(label).set(max(0, high - position))
