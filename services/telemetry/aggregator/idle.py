"""The idle clock: a partition that brings no records for ``telemetry_idle_close_ms`` has its
event time follow the wall clock, so that its open windows still close.

A replay sees no idle time, so an advance that closes windows is committed first, pinned to
the next offset (``;idle=`` in the commit metadata): a replay repeats it there, and a reading
that came after it is late on replay too (docs/decisions/0002-window-recovery.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.telemetry.aggregator.commit import Committer
from services.telemetry.aggregator.partition import Partition

# The loop's commit of partitions pinned to an idle advance: {tp: (offset, watermark)}.
PinnedCommit = Callable[[dict[TopicPartition, tuple[int, int]]], Awaitable[None]]


class IdleClock:
    """Moves quiet partitions of ``partitions`` (the loop's own dict) by the wall clock."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        partitions: dict[TopicPartition, Partition],
        committer: Committer,
        commit: PinnedCommit,
        idle_after_ms: int,
    ) -> None:
        self.consumer = consumer
        self.partitions = partitions
        self.committer = committer
        self.commit = commit
        self.idle_after_ms = idle_after_ms

    async def tick(self, tp: TopicPartition, part: Partition, now: int) -> None:
        """The idle clock of a partition this poll brought nothing for."""
        quiet = now - part.idle_since_ms >= self.idle_after_ms
        if quiet and part.replay_idle is not None:
            quiet = await self._replayed(tp, part)
        if part.windows.open_count and quiet and not part.windows.has_closed:
            await self._advance(tp, part, part.wm_at_idle + (now - part.idle_since_ms))

    async def _advance(self, tp: TopicPartition, part: Partition, watermark: int) -> None:
        """Move a quiet partition's watermark by the wall clock, committing first (pinned) if
        the advance closes windows."""
        if part.windows.has_due_at(watermark):
            await self.commit({tp: (part.next_offset, watermark)})
            if self.partitions.get(tp) is not part:
                return  # revoked meanwhile: the next owner replays
            # Then commit the advanced watermark as soon as the windows are acknowledged.
            self.committer.soon = True
        part.move_idle(part.next_offset, watermark)

    async def _replayed(self, tp: TopicPartition, part: Partition) -> bool:
        """Whether a partition restored with a pinned idle advance has been read to its end: no
        idle time before that, since the run it replays had none (records are still to come).
        At the end the pin is applied, if no record at or after its offset came to apply it
        (the records before it may end in transaction markers, which no poll returns)."""
        high = self.consumer.highwater(tp)
        if high is None or await self.consumer.position(tp) < high:
            return False
        part.release_pin()
        return True
