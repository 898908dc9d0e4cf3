"""The aggregator loop: decode -> window -> emit in batches -> commit the safe offset.

Shape after arroyo/snuba strategies: one ``getmany`` poll feeds every partition's windows; the
closed windows of the poll are appended to record batches (one future per batch, not per window)
and DLQ records are sent without awaiting each one; before a commit every pending send is
awaited, then each partition commits the offset of the first reading of its oldest open window,
with its watermark in the commit metadata (see ``domain/windows.py``). Metrics are counted per
poll, not per reading. See docs/decisions/0004-hot-path-decoder.md for the decoder.

No record stops a partition: invalid input and records whose processing raises (``failures.py``)
go to the DLQ and the poll goes on after them; a failure is isolated without a cost on the hot
path (exceptions are caught around each stage's loop, not per reading).

Roles (``MILLRACE_TELEMETRY_ROLE``): ``all`` runs windows, alarms and machine states in this one
loop; ``windows`` leaves alarms out; ``alarms`` keeps no windows (only each partition's
watermark, which quiet-partition deadlines need), emits no aggregates and dead-letters nothing
(the windows role does that for the same records), in a consumer group of its own. See
docs/decisions/0007-alarms-apart.md.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from contracts.telemetry import Quality
from services.telemetry import metrics as m
from services.telemetry.alarms.engine import PartitionEngine
from services.telemetry.alarms.monitor import Monitor
from services.telemetry.batch_send import BatchSender, PreparedBatches
from services.telemetry.decode_fast import FastReading, decode_readings_fast
from services.telemetry.domain.clocks import Checkpoint, ClockScan
from services.telemetry.domain.devices import DeviceWindows, LateRecord
from services.telemetry.domain.windows import PartitionWindows, RecordFailedError, WindowKey
from services.telemetry.emit import AGGREGATES_TOPIC, WindowRecord, window_record
from services.telemetry.failures import (
    Failure,
    processing_error,
    window_name,
    window_source,
)
from services.telemetry.late import LATE_TOPIC, late_record
from services.telemetry.rules import RuleBook
from services.telemetry.settings import TelemetrySettings
from shared.dlq import DlqPublisher, InvalidMessageError, RecordLike
from shared.kafka_records import RawRecord, consumer_record
from shared.logging import get_logger

READINGS_TOPIC = "telemetry.readings.v1"
# A boundary closes one window per series and size at once (100 k in the benchmark). A poll
# closes and encodes them for at most EMIT_SLICE_S, in chunks of EMIT_CHUNK, then polls again,
# so readings (alarm readings above all) are never held back by a whole burst. Every due
# window is emitted (its record appended) before any is retired (the bookkeeping of its close).
EMIT_SLICE_S = 0.01
EMIT_CHUNK = 500
# Windows that have ended are encoded ahead of their close, in the allowed lateness, for at
# most SEAL_SLICE_S per poll while no window is due and the poll was not full (0 turns it off),
# paced over the lateness: a deadline's windows are sealed in proportion to how far the
# watermark has come from their settle point towards SEAL_FINISH_MS before the deadline. Sealed
# as fast as the polls allowed, a boundary's windows keep a core busy for seconds, a burst that
# the other processes on the machine (the alarms above all) wait behind
# (docs/decisions/0004-hot-path-decoder.md, "The close path").
SEAL_SLICE_S = 0.005
SEAL_FINISH_MS = 500
# At most this many windows sealed ahead of their close at once (a sealed window's record, about
# 640 bytes, lives until the close): the benchmark's boundaries (50 k windows, 100 k at a
# minute) are sealed whole, and with 100 k devices x 10 metrics (1 M windows a boundary) sealing
# them all held 640 MB more during the lateness; beyond this they are made at their close.
SEAL_MAX_WINDOWS = 150_000
# While windows are due, the loop yields this many times between polls: the consumer's fetcher
# needs about that many turns of the event loop (wake, send the fetch, read the response, hand
# the records over), and with one turn per slice a fetch took several slices, so the readings
# (alarm readings too) behind a boundary waited for hundreds of milliseconds.
BACKLOG_YIELDS = 4
# Empty polls in a row after which reading a partition again for its device clocks stops short
# of the commit point (its records were deleted, or it ends in transaction markers).
SCAN_EMPTY_POLLS = 10
# After a partition's records queued alarms or machine states, the loop waits this long at most
# for them to be acknowledged before it goes on (next partition, windows): enough for the events
# producer to put them on the wire.
EVENTS_HANDOFF_S = 0.005
# Allocations between young-generation collections (Python's default is 700); see settle_gc().
GC_YOUNG_THRESHOLD = 20_000
log = get_logger(__name__)
_SIZE, _END, _OFFSET = attrgetter("size_ms"), attrgetter("window_end"), attrgetter("offset")
_TO_EMIT, _DUE = attrgetter("to_emit"), attrgetter("due")


def settle_gc() -> None:
    """Set the garbage collector up for a consuming loop (the process's, once at its start).

    What exists now (modules, clients, settings: tens of thousands of objects) lives as long as
    the process; frozen, full collections no longer walk it, which, with the untracked window
    state, keeps the longest collections (the loop's longest stalls) short. A poll brings up to
    ``telemetry_max_poll_records`` consumer records (5 000), each a tracked object with its own
    tuples, and with Python's default of 700 allocations per young collection every poll paid
    for several collections of objects that die with it: ``GC_YOUNG_THRESHOLD`` allows a few
    polls' worth (docs/decisions/0004-hot-path-decoder.md, "The collector").
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_metadata(watermark: int, idle: tuple[int, int] | None = None) -> str:
    """``wm=<watermark>``, and with ``idle`` (offset, watermark) ``;idle=<watermark>@<offset>``:
    the idle clock moved the watermark there before the record at that offset."""
    text = f"wm={watermark}"
    return text if idle is None else f"{text};idle={idle[1]}@{idle[0]}"


def decode_metadata(metadata: str | None) -> int:
    """The watermark of :func:`encode_metadata`'s text (-1 if there is none)."""
    if metadata and metadata.startswith("wm="):
        try:
            return int(metadata[3:].split(";", 1)[0])
        except ValueError:
            return -1
    return -1


def decode_idle(metadata: str | None) -> tuple[int, int] | None:
    """The (offset, watermark) of the idle clock's advance in :func:`encode_metadata`'s text."""
    if not metadata or ";idle=" not in metadata:
        return None
    watermark, _, offset = metadata.split(";idle=", 1)[1].partition("@")
    try:
        return int(offset), int(watermark)
    except ValueError:
        return None


class _Sealed:
    """A deadline's windows sealed ahead, as record batches ready to send, and how many of
    each size they hold."""

    __slots__ = ("batches", "sizes")

    def __init__(self, out: BatchSender) -> None:
        self.batches = PreparedBatches(out)
        self.sizes: Counter[int] = Counter()


class _Partition:
    __slots__ = (
        "dirty",
        "engine",
        "idle_since_ms",
        "next_offset",
        "replay_at",
        "replay_idle",
        "sealed",
        "windows",
        "wm_at_idle",
    )

    def __init__(
        self,
        windows: PartitionWindows | DeviceWindows,
        engine: PartitionEngine,
        replay_idle: tuple[int, int] | None = None,
        replay_at: int = -1,
    ) -> None:
        self.windows = windows
        self.engine = engine
        self.next_offset = -1
        self.idle_since_ms = _wall_ms()
        self.wm_at_idle = windows.watermark
        self.dirty = False
        # (offset, watermark): the idle clock's advance the replay repeats before that offset.
        self.replay_idle = replay_idle
        # The commit point a replay started below: late readings before it were sent already.
        self.replay_at = replay_at
        # Deadline -> its windows sealed ahead (Aggregator._seal_slice), until their close.
        self.sealed: dict[int, _Sealed] = {}


def _release_pin(part: _Partition) -> None:
    """Make the pinned idle advance a replay reached (see ``_Partition.replay_idle``)."""
    if part.replay_idle is not None:
        _idle_move(part.windows, *part.replay_idle)
        part.replay_idle = None


def _idle_move(windows: PartitionWindows | DeviceWindows, offset: int, watermark: int) -> None:
    """The idle clock before the record at ``offset``: the partition's watermark follows the
    wall clock, and with a clock per device every device's open windows close."""
    if isinstance(windows, DeviceWindows):
        windows.shut(offset, watermark)
    else:
        windows.advance_to(watermark)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, agg: Aggregator) -> None:
        self._agg = agg

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # Pending sends and commits happen inside the poll loop, never across a poll (a commit
        # in flight is waited for here), so the state can simply be dropped: the next owner
        # replays from the committed offset.
        await self._agg.settle_commit()
        for tp in revoked:
            self._agg.partitions.pop(tp, None)
        self._agg.monitor.drop(revoked)
        if revoked:
            log.info("partitions revoked", partitions=[tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if assigned:
            log.info("partitions assigned", partitions=[tp.partition for tp in assigned])


class Aggregator:
    """Turns ``telemetry.readings.v1`` into ``telemetry.aggregates.v1``."""

    def __init__(
        self,
        settings: TelemetrySettings,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        monitor: Monitor | None = None,
        events_producer: AIOKafkaProducer | None = None,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.producer = producer
        # Alarms and machine states go out on their own connection, so that they never queue
        # behind a boundary's window batches (one request in flight per broker connection).
        self.events_producer = events_producer or producer
        self.dlq = DlqPublisher(producer, settings.service_name)
        self.runs_windows = settings.runs_windows
        self.sizes = settings.window_sizes_ms if self.runs_windows else ()
        self.lateness = settings.telemetry_allowed_lateness_ms
        self.partitions: dict[TopicPartition, _Partition] = {}
        self.monitor = monitor or Monitor(RuleBook(), self.lateness)
        self._pending: list[asyncio.Future[Any]] = []
        self._out = BatchSender(producer, AGGREGATES_TOPIC, compression=settings.kafka_compression)
        self.readings_topic = READINGS_TOPIC
        self._per_device = bool(self.sizes) and settings.telemetry_event_time == "device"
        self.late_topic = LATE_TOPIC
        self._size_labels = [f"{size}ms" for size in self.sizes]
        self._last_commit = time.monotonic()
        self._backlog = False
        # Windows closed by the idle clock: commit as soon as they are acknowledged.
        self._commit_soon = False
        self._committing: asyncio.Future[None] | None = None
        self.emit_slice_s = EMIT_SLICE_S
        self.seal_slice_s = SEAL_SLICE_S
        self.seal_max_windows = SEAL_MAX_WINDOWS
        self.healthy = False
        # Records (and windows) whose processing raised, dead-lettered or reported since start.
        self.processing_errors = 0
        self._window_failures: list[tuple[_Partition, WindowKey, int, Exception]] = []

    def subscribe(self) -> None:
        self.consumer.subscribe([self.readings_topic], listener=_Listener(self))

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; then flush and commit what is safe."""
        settle_gc()
        self.subscribe()
        interval = self.settings.telemetry_commit_interval_ms / 1000
        while not stop.is_set():
            batch = await self.consumer.getmany(
                timeout_ms=0 if self._backlog else 200,
                max_records=self.settings.telemetry_max_poll_records,
            )
            await self.process(batch)
            # getmany() returns at once while records are buffered and process() only queues
            # its sends, so without this the loop could run for most of a second without ever
            # letting the producers' sender tasks (alarms!) or the fetcher run.
            for _ in range(BACKLOG_YIELDS if self._backlog else 1):
                await asyncio.sleep(0)
            self.healthy = True
            if self._committing is not None and self._committing.done():
                committing, self._committing = self._committing, None
                committing.result()  # a failed commit fails the loop (the supervisor restarts)
            if self._committing is None and self._commit_due(interval):
                await self.commit(background=True)
        # Clean stop only: after an error nothing is committed and the restart replays.
        for part in self.partitions.values():
            self._emit(part, None)
            self._retire(part, None)
        await self._report_window_failures()
        if not self._out.empty:
            self._pending.append(self._out.flush())
        await self.commit()

    async def process(self, batch: Mapping[TopicPartition, Sequence[RawRecord]]) -> None:
        """Apply one poll's records, send its alarms, then close and queue due windows for at
        most ``emit_slice_s`` (the rest in the next polls, which then do not wait for
        records); window sends are not awaited here."""
        rescanned = await self._restore(tp for tp in batch if tp not in self.partitions)
        if self.runs_windows and not self._out.ready:
            await self._out.refresh()
        now = _wall_ms()
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
        idle_after = self.settings.telemetry_idle_close_ms
        for tp, part in list(self.partitions.items()):
            if tp in batch:
                continue
            quiet = now - part.idle_since_ms >= idle_after
            if quiet and part.replay_idle is not None:
                quiet = await self._replayed(tp, part)
            if part.windows.open_count and quiet and not part.windows.due:
                # A quiet partition's event time follows the wall clock, so its windows close.
                await self._advance_idle(tp, part, part.wm_at_idle + (now - part.idle_since_ms))
            await self._send_events(tp, part)
        full = sum(map(len, batch.values())) >= self.settings.telemetry_max_poll_records
        # Catching up (a full poll) with a clock per device, every window due leaves before
        # the next poll: a backlog of one reading per window closes as many windows as it
        # brings readings, and held back over slices they would grow with the backlog.
        self._backlog = self._emit_slice(catching_up=full and self._per_device)
        if self._window_failures:
            await self._report_window_failures()
        # Sealing spends idle time: a consumer catching up (a full poll) has none, and the
        # windows it closes are late anyway.
        if not self._backlog and not full and self.seal_slice_s > 0:
            self._seal_slice()
        if not self._out.empty:
            self._pending.append(self._out.flush())
        self._observe(now)

    async def _advance_idle(self, tp: TopicPartition, part: _Partition, watermark: int) -> None:
        """Move a quiet partition's watermark by the wall clock. A replay sees no idle time, so
        an advance that closes windows is committed first, pinned to the next offset: a replay
        repeats it there, and a reading that comes after it is late on replay too
        (docs/decisions/0002-window-recovery.md)."""
        windows = part.windows
        if windows.due_at(watermark):
            await self.commit(idle={tp: (part.next_offset, watermark)})
            if self.partitions.get(tp) is not part:
                return  # revoked meanwhile: the next owner replays
            # Then commit the advanced watermark as soon as the windows are acknowledged.
            self._commit_soon = True
        _idle_move(windows, part.next_offset, watermark)

    async def _replayed(self, tp: TopicPartition, part: _Partition) -> bool:
        """Whether a partition restored with a pinned idle advance has been read to its end: no
        idle time before that, since the run it replays had none (records are still to come).
        At the end the pin is applied, if no record at or after its offset came to apply it
        (the records before it may end in transaction markers, which no poll returns)."""
        high = self.consumer.highwater(tp)
        if high is None or await self.consumer.position(tp) < high:
            return False
        _release_pin(part)
        return True

    async def _send_events(self, tp: TopicPartition, part: _Partition) -> None:
        """Advance the partition's alarm engine and send its events; then wait a moment for
        the events producer's sender to put them on the wire before the windows' CPU work
        (queued but unsent, they would wait for all of it)."""
        events = await self.monitor.flush(self.events_producer, tp, part.windows.watermark)
        if events:
            self._pending += events
            await asyncio.wait(events, timeout=EVENTS_HANDOFF_S)

    async def _apply(
        self, tp: TopicPartition, part: _Partition, records: Sequence[RawRecord], now: int
    ) -> None:
        if part.replay_idle is not None:
            # A replay: the idle clock moved the watermark before the record at ``offset``.
            offset = part.replay_idle[0]
            i = bisect.bisect_left(records, offset, key=_OFFSET)
            if i:
                await self._apply_records(tp, part, records[:i], now)
            if i < len(records) or part.next_offset >= offset:
                _release_pin(part)
            records = records[i:]
        if records:
            await self._apply_records(tp, part, records, now)

    async def _apply_records(
        self, tp: TopicPartition, part: _Partition, records: Sequence[RawRecord], now: int
    ) -> None:
        rejected: list[tuple[RawRecord, InvalidMessageError]] = []
        failures: list[Failure] = []
        late_out: list[LateRecord] = []
        readings, bad, late = self._add(part, records, now, rejected, failures, late_out=late_out)
        m.RECORDS.inc(len(records))
        if failures:
            await self._dead_letter_all(tp, rejected, failures)
        elif self.runs_windows:
            # (In the alarms role the windows role dead-letters these very records.)
            for record, err in rejected:
                await self._dead_letter(consumer_record(tp, record), err)
        if self.runs_windows:
            m.READINGS.inc(readings)
            if bad:
                m.BAD_QUALITY.inc(bad)
            for mask, count in late.items():
                self._count_late(mask, count)
            if late_out:
                await self._send_late(tp, part, late_out)
        if records:
            part.next_offset = records[-1].offset + 1
            part.dirty = True

    def _add(
        self,
        part: _Partition,
        records: Sequence[RawRecord],
        now: int,
        rejected: list[tuple[RawRecord, InvalidMessageError]],
        failures: list[Failure],
        *,
        late_out: list[LateRecord],
    ) -> tuple[int, int, dict[int, int]]:
        """Decode ``records`` and add their readings to the windows (with a clock per device,
        the records with late readings join ``late_out``). A record the windows raise for
        (``RecordFailedError``) joins ``failures`` and the records after it are added in
        another call (the counts of the call that failed are lost: metrics only)."""
        windows = part.windows
        while True:
            decoded = self._decoded(part, records, now, rejected, failures)
            try:
                if isinstance(windows, DeviceWindows):
                    return windows.add_records(decoded, Quality.BAD, late_out)
                return windows.add_records(decoded, Quality.BAD)
            except RecordFailedError as err:
                if isinstance(err.__cause__, MemoryError):
                    raise  # the process, not the record: the supervisor restarts
                i = bisect.bisect_left(records, err.offset, key=_OFFSET)
                failures.append(Failure("windows", records[i], err.__cause__ or err))
                records = records[i + 1 :]

    def _decoded(
        self,
        part: _Partition,
        records: Sequence[RawRecord],
        now: int,
        rejected: list[tuple[RawRecord, InvalidMessageError]],
        failures: list[Failure],
    ) -> Iterator[tuple[str, list[FastReading], int]]:
        """(device, readings, offset) of each record as it is decoded (nothing of a poll is
        kept: holding a poll's decoded records made the garbage collector's work grow); the
        alarm engine observes the good readings of its metrics on the way.

        A record the decoder raises for other than as invalid input is left out (a failure of
        stage ``decode``). One the alarm engine raises for is a failure of stage ``alarms``,
        yet still goes to the windows, as it does in a process of the windows role; the engine
        keeps what the record's readings before the failing one did (a replay does the same)."""
        skew = self.settings.telemetry_max_future_skew_ms
        watched, engine, bad_quality = self.monitor.metrics, part.engine, Quality.BAD
        for record in records:
            try:
                batch = decode_readings_fast(record.value, record.key, now, skew)
            except InvalidMessageError as err:
                rejected.append((record, err))
                continue
            except MemoryError:
                raise  # the process, not the record: the supervisor restarts
            except Exception as exc:  # noqa: BLE001 (a processing error: see failures.py)
                failures.append(Failure("decode", record, exc))
                continue
            device, offset = batch.device_id, record.offset
            if watched:
                try:
                    for r in batch.readings:
                        if r.metric in watched and r.quality is not bad_quality:
                            engine.observe(device, r.metric, r.ts, float(r.value), offset)
                except MemoryError:
                    raise
                except Exception as exc:  # noqa: BLE001 (a processing error: see failures.py)
                    failures.append(Failure("alarms", record, exc))
            yield device, batch.readings, offset

    async def _send_late(
        self, tp: TopicPartition, part: _Partition, late_out: list[LateRecord]
    ) -> None:
        """Send each record's late readings to ``telemetry.readings.v1.late`` (see
        ``late.py``), but not those a replay meets below the commit it started from: they
        were sent before that commit."""
        for device, offset, late in late_out:
            if offset < part.replay_at:
                continue
            key, value, headers = late_record(
                device, late, self.sizes, (tp.topic, tp.partition, offset)
            )
            self._pending.append(
                await self.producer.send(self.late_topic, value=value, key=key, headers=headers)
            )
            m.LATE_SENT.inc(len(late))

    async def _dead_letter(self, record: RecordLike, err: InvalidMessageError) -> None:
        if err.reason == "future_timestamp":
            m.FUTURE.inc()
        self._pending.append(await self.dlq.send(record, err))
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=err.reason,
            error=err.detail,
        )

    async def _dead_letter_all(
        self,
        tp: TopicPartition,
        rejected: list[tuple[RawRecord, InvalidMessageError]],
        failures: list[Failure],
    ) -> None:
        """Invalid records (by the windows role only) and failures, in offset order."""
        dead: list[tuple[int, tuple[RawRecord, InvalidMessageError] | Failure]] = [
            (f.record.offset, f) for f in failures
        ]
        if self.runs_windows:
            dead += [(r.offset, (r, err)) for r, err in rejected]
        dead.sort(key=itemgetter(0))  # stable: a record's alarms failure before its windows'
        for _, item in dead:
            if isinstance(item, Failure):
                await self._failed(tp, item)
            else:
                await self._dead_letter(consumer_record(tp, item[0]), item[1])

    async def _failed(self, tp: TopicPartition, failure: Failure) -> None:
        """Count, log and dead-letter a record whose processing raised. A decode failure is
        dead-lettered by the windows role only and an alarms failure by the role that runs
        the alarms, as invalid input is: each record once when the roles run apart."""
        stage, record = failure.stage, consumer_record(tp, failure.record)
        self.processing_errors += 1
        m.PROCESSING_ERRORS.labels(stage).inc()
        log.error(
            "record processing failed",
            stage=stage,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            exc_info=failure.error,
        )
        if self.runs_windows or stage == "alarms":
            await self._dead_letter(record, processing_error(stage, failure.error))

    def _window_failed(self, part: _Partition) -> Callable[[WindowKey, int, Exception], None]:
        """The ``failed`` of ``part``'s emits: reported after the emit slice."""

        def failed(window: WindowKey, offset: int, exc: Exception) -> None:
            self._window_failures.append((part, window, offset, exc))

        return failed

    async def _report_window_failures(self) -> None:
        """Count, log and dead-letter the windows that could not be made (see
        ``failures.WindowSource``); a partition revoked since leaves them to its next owner."""
        reported, self._window_failures = self._window_failures, []
        owners = {id(part): tp for tp, part in self.partitions.items()}
        for part, window, offset, exc in reported:
            tp = owners.get(id(part))
            if tp is None:
                continue
            self.processing_errors += 1
            m.PROCESSING_ERRORS.labels("emit").inc()
            name = window_name(window)
            log.error("window not emitted", window=name, partition=tp.partition, exc_info=exc)
            record = window_source(tp.topic, tp.partition, window, offset)
            await self._dead_letter(record, processing_error("emit", exc, name))

    def _count_late(self, mask: int, count: int) -> None:
        for i, label in enumerate(self._size_labels):
            if mask >> i & 1:
                m.LATE.labels(label).inc(count)

    def _emit_slice(self, *, catching_up: bool = False) -> bool:
        """Close due windows until none is due or the slice is used up; whether windows are
        still due. First every due window's record is made (or taken from its seal) and
        appended, a chunk per partition in turn; then the closed windows are taken off
        (``PartitionWindows.retire_due``): a boundary's records reach their batches before the
        bookkeeping of its close, which took about two fifths of it."""
        until = math.inf if catching_up else time.perf_counter() + self.emit_slice_s
        parts = list(self.partitions.values())
        for step, pending in ((self._emit, _TO_EMIT), (self._retire, _DUE)):
            todo = [p for p in parts if pending(p.windows)]
            while todo:
                moved = []
                for part in todo:
                    if step(part, EMIT_CHUNK):
                        moved.append(part)
                    if time.perf_counter() >= until:
                        return any(p.windows.due for p in parts)
                todo = [p for p in moved if pending(p.windows)]
        return any(p.windows.due for p in parts)

    def _seal_slice(self) -> None:
        """Encode windows that have ended and wait out the allowed lateness, for at most
        ``seal_slice_s``, and append their records to record batches of their own, one set per
        deadline: at their close, those batches are stamped and queued as they are, and only the
        bookkeeping is left (see ``PartitionWindows.seal_ended`` and ``take_sealed``)."""
        until = time.perf_counter() + self.seal_slice_s
        # Windows are left to settle for half the lateness first: right after a boundary every
        # series opens its new windows (the roll), and sealing then would add to that burst.
        settle = self.lateness // 2
        parts = self.partitions.values()
        room = self.seal_max_windows - sum(p.windows.sealed_ahead for p in parts)
        for part in parts:
            sink = self._holder(part)
            while room > 0:
                sealed = part.windows.seal_ended(
                    window_record, min(EMIT_CHUNK, room), settle, SEAL_FINISH_MS, sink
                )
                if not sealed:
                    break
                room -= sealed
                if time.perf_counter() >= until:
                    return

    def _holder(self, part: _Partition) -> Callable[[int, list[WindowRecord]], None]:
        """The sink of ``part``'s seals: each deadline's records into its own batches."""
        held = part.sealed

        def hold(deadline: int, records: list[WindowRecord]) -> None:
            sealed = held.get(deadline)
            if sealed is None:
                sealed = held[deadline] = _Sealed(self._out)
            sealed.batches.extend(records)
            sealed.sizes.update(map(_SIZE, records))

        return hold

    def _emit(self, part: _Partition, budget: int | None) -> int:
        """Queue the records of up to ``budget`` due windows (at least a sealed deadline whole)
        and count them; how many."""
        windows, held = part.windows, part.sealed
        taken = 0
        if held:
            partitions = self._out.partitions
            for deadline in [
                d for d, sealed in held.items() if sealed.batches.partitions != partitions
            ]:
                # The topic's partition count changed since: made again one by one below.
                m.SEALED_WINDOWS_VOIDED.inc(held.pop(deadline).batches.count)
            now = _wall_ms()
            for deadline, whole in windows.take_sealed(window_record, held):
                sealed = held.pop(deadline)
                if not whole:
                    m.SEALED_WINDOWS_VOIDED.inc(sealed.batches.count)
                    continue
                self._out.add_prepared(sealed.batches, now)
                taken += sealed.batches.count
                m.WINDOWS_SENT_SEALED.inc(sealed.batches.count)
                # A deadline's windows all end at the deadline less the lateness.
                for size, count in sealed.sizes.items():
                    m.WINDOWS_EMITTED.labels(f"{size}ms").inc(count)
                    m.observe_many(m.EMIT_LAG, max(0.0, (now - deadline) / 1000), count)
        closed = windows.emit_due_as(window_record, budget, held, self._window_failed(part))
        if not closed:
            if taken:
                part.dirty = True
            return taken
        part.dirty = True
        self._out.extend(closed)
        # Windows of a boundary share their size and end: count them per (size, end) and
        # observe the emit lag once per group (counted in C, not in a loop per window).
        groups = Counter(zip(map(_SIZE, closed), map(_END, closed), strict=True))
        due = _wall_ms() - self.lateness
        for (size, end), count in groups.items():
            m.WINDOWS_EMITTED.labels(f"{size}ms").inc(count)
            m.observe_many(m.EMIT_LAG, max(0.0, (due - end) / 1000), count)
        return taken + len(closed)

    @staticmethod
    def _retire(part: _Partition, budget: int | None) -> int:
        """Take emitted windows off (see :meth:`_emit_slice`); the safe offset moves on."""
        retired = part.windows.retire_due(budget)
        if retired:
            part.dirty = True
        return retired

    def _commit_due(self, interval: float) -> bool:
        """Commit once the interval has passed and every send queued so far is acknowledged,
        so the loop does not stop to wait for a boundary's burst; after five intervals it
        waits anyway, so a steady stream of emits cannot hold the commit back for long. Windows
        closed by the idle clock are committed once all of them are emitted and acknowledged,
        without waiting for the interval."""
        if self._commit_soon and not self._backlog and all(f.done() for f in self._pending):
            return True
        elapsed = time.monotonic() - self._last_commit
        if elapsed < interval:
            return False
        return elapsed >= 5 * interval or all(f.done() for f in self._pending)

    async def settle_commit(self) -> None:
        """Wait for a commit in flight (its failure is dropped: a later commit covers it)."""
        committing, self._committing = self._committing, None
        if committing is not None:
            with contextlib.suppress(Exception):
                await committing

    async def commit(
        self,
        *,
        background: bool = False,
        idle: dict[TopicPartition, tuple[int, int]] | None = None,
    ) -> None:
        """Await every pending send, then commit each partition's safe offset and watermark.

        ``background``: the Kafka commit itself (a round trip to the group coordinator, up to
        about 0.1 s while a boundary's windows reach the broker) runs as a task, so polls and
        alarms go on meanwhile; the next commit waits for it. ``idle``: partitions committed
        with the (offset, watermark) of an idle-clock advance about to be made, in the metadata
        beside the watermark."""
        if self._committing is not None:
            committing, self._committing = self._committing, None
            await committing
        if self._pending:
            pending, self._pending = self._pending, []
            await asyncio.gather(*pending)
        if self.runs_windows:
            await self._out.refresh()
        # Alarm/state snapshots first: a committed offset must never need a newer snapshot.
        await self.monitor.save(
            {tp: p.next_offset for tp, p in self.partitions.items() if p.next_offset >= 0}
        )
        offsets: dict[TopicPartition, tuple[int, str]] = {}
        soon, self._commit_soon = self._commit_soon, False
        for tp, part in self.partitions.items():
            # Not while windows the watermark has closed wait for their emit (a boundary spread
            # over several polls): a replay would take their readings for late and lose them.
            pin = idle.get(tp) if idle else None
            if part.windows.due:
                self._commit_soon = soon  # still owed once they are out
            elif (part.dirty or pin) and part.next_offset >= 0:
                windows = part.windows
                safe = self.monitor.clamp(tp, windows.safe_offset(part.next_offset))
                if isinstance(windows, DeviceWindows):
                    text = windows.checkpoint(part.next_offset).encode()
                    meta = text if pin is None else f"{text};idle={pin[1]}@{pin[0]}"
                else:
                    meta = encode_metadata(windows.watermark, pin)
                offsets[tp] = (safe, meta)
                part.dirty = False
        if offsets and background:
            self._committing = asyncio.ensure_future(self.consumer.commit(offsets))
        elif offsets:
            await self.consumer.commit(offsets)
        self._last_commit = time.monotonic()

    async def _restore(self, tps: Iterable[TopicPartition]) -> set[TopicPartition]:
        """The state of newly assigned partitions from their commits; returns those whose
        records of this poll are dropped (their device clocks were read again first, and the
        consumer is back at the committed offset)."""
        missing = list(tps)
        if not missing:
            return set()
        # aiokafka's public committed() drops the metadata, which holds the watermark.
        committed = await self.consumer._coordinator.fetch_committed_offsets(missing)
        await self.monitor.restore(missing)
        # A rebalance during those awaits may have revoked some of them: the revoke found no
        # state to drop, so none is made here either (the next owner replays them).
        assigned = self.consumer.assignment()
        revoked = [tp for tp in missing if tp not in assigned]
        if revoked:
            self.monitor.drop(revoked)
            log.info(
                "partitions revoked before restore", partitions=[tp.partition for tp in revoked]
            )
        rescanned: set[TopicPartition] = set()
        for tp in (tp for tp in missing if tp in assigned):
            meta = committed.get(tp)
            metadata = meta.metadata if meta is not None else None
            pinned = decode_idle(metadata)
            windows: PartitionWindows | DeviceWindows
            replay_at = -1
            checkpoint = Checkpoint.decode(metadata) if self._per_device else None
            if not self._per_device:
                windows = PartitionWindows(self.sizes, self.lateness)
                windows.advance_to(decode_metadata(metadata))
            elif checkpoint is None:
                # Nothing committed, or a partition-wide watermark of an earlier version.
                windows = self._device_windows()
                windows.base = decode_metadata(metadata)
                windows.advance_to(windows.base)
            else:
                windows = self._device_windows()
                clocks: dict[str, int] = {}
                if meta is not None and checkpoint.scan < checkpoint.at:
                    clocks = await self._scan_clocks(tp, checkpoint, meta.offset)
                    rescanned.add(tp)
                windows.restore(checkpoint, clocks)
                replay_at = checkpoint.at
            self.partitions[tp] = _Partition(windows, self.monitor.engine(tp), pinned, replay_at)
            log.info(
                "partition restored",
                partition=tp.partition,
                watermark=windows.watermark,
                idle=pinned,
                clocks_from=checkpoint.scan if checkpoint else None,
            )
        return rescanned

    def _device_windows(self) -> DeviceWindows:
        return DeviceWindows(self.sizes, self.lateness, self.settings.telemetry_backfill_horizon_ms)

    async def _scan_clocks(
        self, tp: TopicPartition, checkpoint: Checkpoint, committed: int
    ) -> dict[str, int]:
        """Read ``[scan, at)`` of ``tp`` once for the device clocks of ``checkpoint`` (see
        ``domain/devices.py``), then go back to the committed offset for the replay."""
        scan = ClockScan(self.sizes, self.lateness, checkpoint)
        skew, bad = self.settings.telemetry_max_future_skew_ms, Quality.BAD
        self.consumer.seek(tp, checkpoint.scan)
        empty = 0
        while await self.consumer.position(tp) < checkpoint.at and empty < SCAN_EMPTY_POLLS:
            got = await self.consumer.getmany(
                tp, timeout_ms=500, max_records=self.settings.telemetry_max_poll_records
            )
            records = got.get(tp, [])
            empty = 0 if records else empty + 1
            now = _wall_ms()
            for record in records:
                if record.offset >= checkpoint.at:
                    break
                try:
                    batch = decode_readings_fast(record.value, record.key, now, skew)
                except MemoryError:
                    raise
                except Exception:  # noqa: BLE001, S112 (left out of the windows as well)
                    continue
                scan.add(batch.device_id, batch.readings, record.offset, bad)
        self.consumer.seek(tp, committed)
        log.info("device clocks read again", partition=tp.partition, devices=len(scan.tops))
        return scan.finish()

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
