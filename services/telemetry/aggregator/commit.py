"""Committing: when the loop commits, and what. Every send queued so far (windows, dead
letters, late readings, alarms) is awaited, alarm snapshots are saved, then each partition
commits its safe offset (the first reading of its oldest open window, or the next offset) with
its clock in the metadata (``metadata.py``; docs/decisions/0002-window-recovery.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.telemetry.aggregator.metadata import commit_metadata
from services.telemetry.aggregator.partition import Partition
from services.telemetry.engine.monitor import Monitor
from services.telemetry.kafka.batch_send import BatchSender
from services.telemetry.windows.devices import DeviceWindows


class Committer:
    """Commits the loop's ``partitions`` once ``pending`` (the loop's sends) are acknowledged."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        partitions: dict[TopicPartition, Partition],
        monitor: Monitor,
        out: BatchSender | None,
    ) -> None:
        self.consumer = consumer
        self.partitions = partitions
        self.monitor = monitor
        # The windows' sender (None in the alarms role): its partition count is refreshed here.
        self.out = out
        self.pending: list[asyncio.Future[Any]] = []
        self.last = time.monotonic()
        # Windows closed by the idle clock: commit as soon as they are acknowledged.
        self.soon = False
        self.committing: asyncio.Future[None] | None = None

    def due(self, interval: float, backlog: bool) -> bool:
        """Commit once the interval has passed and every send queued so far is acknowledged,
        so the loop does not stop to wait for a boundary's burst; after five intervals it
        waits anyway, so a steady stream of emits cannot hold the commit back for long. Windows
        closed by the idle clock are committed once all of them are emitted and acknowledged,
        without waiting for the interval."""
        if self.soon and not backlog and all(f.done() for f in self.pending):
            return True
        elapsed = time.monotonic() - self.last
        if elapsed < interval:
            return False
        return elapsed >= 5 * interval or all(f.done() for f in self.pending)

    def check(self) -> None:
        """Take a finished background commit; a failed one fails the loop (the supervisor
        restarts it)."""
        if self.committing is not None and self.committing.done():
            committing, self.committing = self.committing, None
            committing.result()

    async def wait_in_flight(self) -> None:
        """Wait for a commit in flight (its failure is dropped: a later commit covers it)."""
        committing, self.committing = self.committing, None
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
        if self.committing is not None:
            committing, self.committing = self.committing, None
            await committing
        if self.pending:
            # Emptied in place: the loop's parts append to this very list.
            pending = self.pending[:]
            self.pending.clear()
            await asyncio.gather(*pending)
        if self.out is not None:
            await self.out.refresh()
        # Alarm/state snapshots first: a committed offset must never need a newer snapshot.
        await self.monitor.save(
            {tp: p.next_offset for tp, p in self.partitions.items() if p.next_offset >= 0}
        )
        offsets: dict[TopicPartition, tuple[int, str]] = {}
        soon, self.soon = self.soon, False
        for tp, part in self.partitions.items():
            # Not while windows the watermark has closed wait for their emit (a boundary spread
            # over several polls): a replay would take their readings for late and lose them.
            pin = idle.get(tp) if idle else None
            if isinstance(part.windows, DeviceWindows):
                # The restored clocks start at the floor: what it passed must be out first.
                part.windows.sweep()
            if part.windows.has_closed:
                self.soon = soon  # still owed once they are out
            elif part.next_offset < part.replay_at and not pin:
                # Replaying below the commit it restored: its clocks are those of that commit
                # point, not of this one, and a checkpoint here would claim them too early
                # (a crash would rebuild them, and judge the records between, by what only
                # came after). The restored commit stands until the replay has passed it; an
                # idle advance is pinned anyway: the partition brought nothing more to replay.
                continue
            elif (part.dirty or pin) and part.next_offset >= 0:
                windows = part.windows
                safe = self.monitor.clamp(tp, windows.safe_offset(part.next_offset))
                offsets[tp] = (safe, commit_metadata(windows, part.next_offset, pin))
                part.dirty = False
        if offsets and background:
            self.committing = asyncio.ensure_future(self.consumer.commit(offsets))
        elif offsets:
            await self.consumer.commit(offsets)
        self.last = time.monotonic()
