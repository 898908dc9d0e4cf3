"""The aggregator's observer: one engine per assigned partition, published and snapshotted
inside the aggregator's poll/commit cycle.

The aggregator calls, per poll: :meth:`Monitor.restore` for newly assigned partitions,
``engine(tp).observe(...)`` for each good reading whose metric is in :attr:`Monitor.metrics`
(a set lookup is the whole cost for every other reading), :meth:`Monitor.flush` per partition
(events are sent like windows: queued, awaited before the commit); and, in the commit, after
every send is acknowledged and before offsets are committed, :meth:`Monitor.save`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from services.telemetry import metrics as m
from services.telemetry.alarms.emit import Record, encode_alarm
from services.telemetry.alarms.instance import AlarmTransition
from services.telemetry.engine.partition import Event, PartitionEngine
from services.telemetry.engine.store import SnapshotStore
from services.telemetry.rules.book import RuleBook
from services.telemetry.states.emit import encode_state
from shared.logging import get_logger

log = get_logger(__name__)


class Monitor:
    def __init__(
        self,
        book: RuleBook,
        lateness_ms: int,
        store: SnapshotStore | None = None,
        interval_ms: int = 0,
        idle_ms: int = 2_000,
    ) -> None:
        self.book = book
        self.metrics = book.metrics
        self.lateness_ms = lateness_ms
        self.store = store if not book.empty else None
        self.interval_s = interval_ms / 1000
        self.engines: dict[TopicPartition, PartitionEngine] = {}
        self._saved: dict[TopicPartition, int] = {}
        self._last_save = -float("inf")
        self.idle_ms = idle_ms
        self._moved: dict[TopicPartition, tuple[int, int]] = {}

    def engine(self, tp: TopicPartition) -> PartitionEngine:
        return self.engines[tp]

    async def restore(self, tps: Iterable[TopicPartition]) -> None:
        """Fresh engines for ``tps``, continued from their snapshots when there are any."""
        wanted = list(tps)
        by_topic: dict[str, list[int]] = {}
        for tp in wanted:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        for topic, partitions in by_topic.items():
            snaps: dict[int, dict[str, Any]] = {}
            if self.store is not None and not self.book.empty:
                snaps = await self.store.load(topic, partitions)
            for p in partitions:
                tp = TopicPartition(topic, p)
                engine = PartitionEngine(self.book, self.lateness_ms)
                snap = snaps.get(p)
                if snap is not None:
                    engine.restore(snap)
                    log.info("engine restored", partition=p, next_offset=engine.skip_below)
                self.engines[tp] = engine
                self._saved[tp] = engine.skip_below
        self._gauge()

    def drop(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.engines.pop(tp, None)
            self._saved.pop(tp, None)
            self._moved.pop(tp, None)
        self._gauge()

    async def flush(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        watermark: int,
        now_ms: int | None = None,
    ) -> list[asyncio.Future[Any]]:
        """Advance ``tp``'s engine to ``watermark`` and queue every event it produced."""
        engine = self.engines.get(tp)
        if engine is None:
            return []
        engine.advance(self._clock(tp, watermark, now_ms or time.time_ns() // 1_000_000))
        if engine.failures:
            _report(tp, engine)
        if not engine.events:
            return []
        pending = []
        for event in engine.drain():
            try:
                topic, key, value, headers = _encoded(event)
            except Exception:
                # Encoding is deterministic: the event would fail on every retry and replay.
                m.PROCESSING_ERRORS.labels("alarms").inc()
                log.exception("event not published", partition=tp.partition, data=repr(event))
                continue
            pending.append(await producer.send(topic, value=value, key=key, headers=headers))
        self._gauge()
        return pending

    def clamp(self, tp: TopicPartition, offset: int) -> int:
        """The offset the aggregator may commit: never past the newest snapshot, because a
        replay from there must find the engine state of everything before it."""
        if self.store is None:
            return offset
        return min(offset, self._saved.get(tp, -1))

    async def save(self, next_offsets: dict[TopicPartition, int]) -> None:
        """Snapshot the engines whose partition moved on; call after the sends, before the
        Kafka commit. Every ``interval_ms``, and at once for a partition never saved yet, so
        the commit of a busy partition is held back by at most that interval."""
        if self.store is None:
            return
        due = time.monotonic() - self._last_save >= self.interval_s
        by_topic: dict[str, dict[int, dict[str, Any]]] = {}
        for tp, offset in next_offsets.items():
            engine = self.engines.get(tp)
            saved = self._saved.get(tp, -1)
            if engine is None or offset <= saved or (saved >= 0 and not due):
                continue
            by_topic.setdefault(tp.topic, {})[tp.partition] = engine.snapshot(offset)
        for topic, snaps in by_topic.items():
            await self.store.save(topic, snaps)
            for p, snap in snaps.items():
                self._saved[TopicPartition(topic, p)] = int(snap["next_offset"])
        if due:
            self._last_save = time.monotonic()

    def _clock(self, tp: TopicPartition, watermark: int, now: int) -> int:
        """The partition's event time for deadlines. The aggregator's watermark stops once all
        its windows have closed, but a silence (absence, DOWN) must still time out: after
        ``idle_ms`` without the watermark moving, it follows the wall clock."""
        seen = self._moved.get(tp)
        if seen is None or watermark > seen[0]:
            self._moved[tp] = (watermark, now)
            return watermark
        idle = now - seen[1]
        return watermark + idle if watermark >= 0 and idle >= self.idle_ms else watermark

    def _gauge(self) -> None:
        m.ACTIVE_ALARMS.set(sum(e.active for e in self.engines.values()))


def _encoded(event: Event) -> Record:
    """The event's record; counted once it is made."""
    if isinstance(event, AlarmTransition):
        record = encode_alarm(event)
        if event.state == "raised":
            m.ALARMS_RAISED.labels(event.severity.value).inc()
        else:
            m.ALARMS_CLEARED.inc()
        return record
    record = encode_state(event)
    m.STATE_CHANGES.labels(event.state.value).inc()
    return record


def _report(tp: TopicPartition, engine: PartitionEngine) -> None:
    """Count and log the deadlines whose evaluation raised (``PartitionEngine.failures``)."""
    failures, engine.failures = engine.failures, []
    for device, rule, deadline, exc in failures:
        m.PROCESSING_ERRORS.labels("alarms").inc()
        log.error(
            "rule evaluation failed at its deadline",
            partition=tp.partition,
            device=device,
            rule=rule,
            deadline=deadline,
            exc_info=exc,
        )
