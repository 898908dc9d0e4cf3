"""What the loop keeps of one assigned partition: its windows and alarm engine, its position,
its idle clock, the windows sealed ahead of their close, and what a replay must repeat.

Nothing here survives a revoke: the next owner rebuilds it from the commit (``restore.py``).
"""

from __future__ import annotations

import time
from collections import Counter

from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.kafka.batch_send import BatchSender, PreparedBatches
from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.partition import PartitionWindows


def wall_ms() -> int:
    """The wall clock in epoch milliseconds (the aggregator's default clock)."""
    return time.time_ns() // 1_000_000


class Sealed:
    """A deadline's windows sealed ahead, as record batches ready to send, and how many of
    each size they hold."""

    __slots__ = ("batches", "sizes")

    def __init__(self, out: BatchSender) -> None:
        self.batches = PreparedBatches(out)
        self.sizes: Counter[int] = Counter()


class Partition:
    """One partition's state between polls."""

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
        now: int,
        replay_idle: tuple[int, int] | None = None,
        replay_at: int = -1,
    ) -> None:
        self.windows = windows
        self.engine = engine
        # The offset after the last record applied (-1: none yet): the commit point.
        self.next_offset = -1
        # When the partition last brought records, and its watermark then: the idle clock.
        self.idle_since_ms = now
        self.wm_at_idle = windows.watermark
        # Something changed since the last commit (records applied, windows emitted).
        self.dirty = False
        # (offset, watermark): the idle clock's advance the replay repeats before that offset.
        self.replay_idle = replay_idle
        # The commit point a replay started below: late readings before it were sent already.
        self.replay_at = replay_at
        # Deadline -> its windows sealed ahead (``EmitScheduler.seal_slice``), until their close.
        self.sealed: dict[int, Sealed] = {}

    def move_idle(self, offset: int, watermark: int) -> None:
        """The idle clock before the record at ``offset``: the partition's watermark follows
        the wall clock, and with a clock per device every device's open windows close."""
        if isinstance(self.windows, DeviceWindows):
            self.windows.shut(offset, watermark)
        else:
            self.windows.advance_to(watermark)

    def release_pin(self) -> None:
        """Make the pinned idle advance a replay reached (see ``replay_idle``)."""
        if self.replay_idle is not None:
            self.move_idle(*self.replay_idle)
            self.replay_idle = None
