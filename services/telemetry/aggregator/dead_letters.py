"""What leaves the windows aside: invalid records and records whose processing raised go to
the readings' DLQ (``failures.py``), windows that cannot be encoded are reported there too, and
late readings go to ``telemetry.readings.v1.late`` (``late.py``). Every send is queued on the
loop's pending list, which a commit awaits before it moves past the records concerned.

In the alarms role the windows role dead-letters the same records: this one reports only the
failures of the alarm rules, so each record reaches the DLQ once when the roles run apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from services.telemetry import metrics as m
from services.telemetry.aggregator.failures import (
    Failure,
    processing_error,
    window_name,
    window_source,
)
from services.telemetry.aggregator.late import LATE_TOPIC, late_record
from services.telemetry.aggregator.partition import Partition
from services.telemetry.kafka.records import RawRecord, consumer_record
from services.telemetry.windows.devices import LateRecord
from services.telemetry.windows.model import WindowKey
from shared.dlq import DlqPublisher, InvalidMessageError, RecordLike
from shared.logging import get_logger

log = get_logger(__name__)
# A window that could not be encoded: its partition, the window, its first reading's offset.
WindowFailure = tuple[Partition, WindowKey, int, Exception]


class DeadLetters:
    """Sends dead letters and late readings, counting them; the sends join ``pending``."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        service: str,
        sizes: Sequence[int],
        pending: list[asyncio.Future[Any]],
        *,
        runs_windows: bool,
    ) -> None:
        self.producer = producer
        self.dlq = DlqPublisher(producer, service)
        self.sizes = tuple(sizes)
        self.pending = pending
        self.runs_windows = runs_windows
        self.late_topic = LATE_TOPIC
        self._size_labels = [f"{size}ms" for size in self.sizes]
        # Records (and windows) whose processing raised, dead-lettered or reported since start.
        self.processing_errors = 0

    async def send(self, record: RecordLike, err: InvalidMessageError) -> None:
        if err.reason == "future_timestamp":
            m.FUTURE.inc()
        self.pending.append(await self.dlq.send(record, err))
        log.warning(
            "record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=err.reason,
            error=err.detail,
        )

    async def invalid(
        self, tp: TopicPartition, rejected: list[tuple[RawRecord, InvalidMessageError]]
    ) -> None:
        """Invalid records of a poll (by the windows role only)."""
        if self.runs_windows:
            for record, err in rejected:
                await self.send(consumer_record(tp, record), err)

    async def invalid_and_failed(
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
                await self.send(consumer_record(tp, item[0]), item[1])

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
            await self.send(record, processing_error(stage, failure.error))

    async def windows_failed(
        self, failures: list[WindowFailure], partitions: dict[TopicPartition, Partition]
    ) -> None:
        """Count, log and dead-letter the windows that could not be made (see
        ``failures.WindowSource``); a partition revoked since leaves them to its next owner."""
        owners = {id(part): tp for tp, part in partitions.items()}
        for part, window, offset, exc in failures:
            tp = owners.get(id(part))
            if tp is None:
                continue
            self.processing_errors += 1
            m.PROCESSING_ERRORS.labels("emit").inc()
            name = window_name(window)
            log.error("window not emitted", window=name, partition=tp.partition, exc_info=exc)
            record = window_source(tp.topic, tp.partition, window, offset)
            await self.send(record, processing_error("emit", exc, name))

    def count_late(self, masks: dict[int, int]) -> None:
        """Count late readings per window size: ``masks`` maps a mask of the sizes whose
        windows they missed (bit i: ``sizes[i]``) to how many readings missed those."""
        for mask, count in masks.items():
            for i, label in enumerate(self._size_labels):
                if mask >> i & 1:
                    m.LATE.labels(label).inc(count)

    async def late(self, tp: TopicPartition, part: Partition, late_out: list[LateRecord]) -> None:
        """Send each record's late readings to ``telemetry.readings.v1.late`` (see
        ``late.py``), but not those a replay meets below the commit it started from: they
        were sent before that commit."""
        for device, offset, late in late_out:
            if offset < part.replay_at:
                continue
            key, value, headers = late_record(
                device, late, self.sizes, (tp.topic, tp.partition, offset)
            )
            self.pending.append(
                await self.producer.send(self.late_topic, value=value, key=key, headers=headers)
            )
            m.LATE_SENT.inc(len(late))
