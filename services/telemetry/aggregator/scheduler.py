"""The emit/seal scheduler: how much of a poll goes to closing windows, and in what order.

A boundary closes one window per series and size at once (100 k in the benchmark). A poll
closes and encodes them for at most ``emit_slice_s``, in chunks of ``EMIT_CHUNK``, then polls
again, so readings (alarm readings above all) are never held back by a whole burst. Every due
window is emitted (its record appended) before any is retired (the bookkeeping of its close);
a consumer catching up with a clock per device does both device by device, in one pass.
Polls with time to spare seal ended windows ahead of their close (``seal_slice``), so that at
the close only their bookkeeping is left. Window sends are queued here, never awaited.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from operator import attrgetter

from aiokafka import TopicPartition

from services.telemetry import metrics as m
from services.telemetry.aggregator.dead_letters import WindowFailure
from services.telemetry.aggregator.partition import Partition, Sealed
from services.telemetry.emit import WindowRecord, window_record
from services.telemetry.kafka.batch_send import BatchSender
from services.telemetry.kafka.internals import observe_many
from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.model import WindowKey

EMIT_SLICE_S = 0.01
EMIT_CHUNK = 500
# Windows that have ended are encoded ahead of their close, in the allowed lateness, for at
# most SEAL_SLICE_S per poll while no window is due and the poll was not full (0 turns it off),
# paced over the lateness: a deadline's windows are sealed in proportion to how far the
# watermark has come from their seal point towards SEAL_FINISH_MS before the deadline. Sealed
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
_SIZE, _END = attrgetter("size_ms"), attrgetter("window_end")
_HAS_DUE, _HAS_CLOSED = attrgetter("has_due"), attrgetter("has_closed")


class EmitScheduler:
    """Closes and seals the windows of ``partitions`` (the loop's own dict) into ``out``."""

    def __init__(
        self,
        partitions: dict[TopicPartition, Partition],
        out: BatchSender,
        lateness: int,
        clock: Callable[[], int],
    ) -> None:
        self.partitions = partitions
        self.out = out
        self.lateness = lateness
        self.clock = clock
        self.emit_slice_s = EMIT_SLICE_S
        self.seal_slice_s = SEAL_SLICE_S
        self.seal_max_windows = SEAL_MAX_WINDOWS
        # Windows that could not be encoded, for the loop to dead-letter after the slice.
        self.failures: list[WindowFailure] = []

    def emit_slice(self, *, catching_up: bool = False) -> bool:
        """Close due windows until none is due or the slice is used up; whether windows are
        still due. First every due window's record is made (or taken from its seal) and
        appended, a chunk per partition in turn; then the closed windows are taken off
        (``PartitionWindows.retire``): a boundary's records reach their batches before the
        bookkeeping of its close, which took about two fifths of it. Catching up (a full poll,
        with a clock per device: see the loop), every due window leaves before the next poll
        anyway, and each device's windows are emitted and retired in one pass
        (:meth:`emit_and_retire`)."""
        until = math.inf if catching_up else time.perf_counter() + self.emit_slice_s
        parts = list(self.partitions.values())
        steps: tuple[tuple[Callable[[Partition, int], int], Callable[[object], bool]], ...] = (
            ((self.emit_and_retire, _HAS_CLOSED),)
            if catching_up
            else ((self.emit, _HAS_DUE), (self.retire, _HAS_CLOSED))
        )
        for step, pending in steps:
            todo = [p for p in parts if pending(p.windows)]
            while todo:
                moved = []
                for part in todo:
                    if step(part, EMIT_CHUNK):
                        moved.append(part)
                    if time.perf_counter() >= until:
                        return any(p.windows.has_closed for p in parts)
                todo = [p for p in moved if pending(p.windows)]
        return any(p.windows.has_closed for p in parts)

    def close_all(self) -> None:
        """Emit and retire every due window, whatever the slice (the loop's clean stop)."""
        for part in self.partitions.values():
            self.emit(part, None)
            self.retire(part, None)

    def seal_slice(self) -> None:
        """Encode windows that have ended and wait out the allowed lateness, for at most
        ``seal_slice_s``, and append their records to record batches of their own, one set per
        deadline: at their close, those batches are stamped and queued as they are, and only the
        bookkeeping is left (see ``PartitionWindows.seal`` and ``emit_sealed``)."""
        until = time.perf_counter() + self.seal_slice_s
        # Windows are sealed from half the lateness after their end: right after a boundary every
        # series opens its new windows (the roll), and sealing then would add to that burst.
        delay = self.lateness // 2
        parts = self.partitions.values()
        room = self.seal_max_windows - sum(p.windows.sealed_ahead for p in parts)
        for part in parts:
            sink = self._holder(part)
            while room > 0:
                sealed = part.windows.seal(
                    window_record, min(EMIT_CHUNK, room), delay, SEAL_FINISH_MS, sink
                )
                if not sealed:
                    break
                room -= sealed
                if time.perf_counter() >= until:
                    return

    def _holder(self, part: Partition) -> Callable[[int, list[WindowRecord]], None]:
        """The sink of ``part``'s seals: each deadline's records into its own batches."""
        held = part.sealed

        def hold(deadline: int, records: list[WindowRecord]) -> None:
            sealed = held.get(deadline)
            if sealed is None:
                sealed = held[deadline] = Sealed(self.out)
            sealed.batches.extend(records)
            sealed.sizes.update(map(_SIZE, records))

        return hold

    def emit(self, part: Partition, budget: int | None) -> int:
        """Queue the records of up to ``budget`` due windows (at least a sealed deadline whole)
        and count them; how many."""
        windows, held = part.windows, part.sealed
        taken = self._send_sealed(part) if held else 0
        closed = windows.emit(window_record, budget, held, self._window_failed(part))
        if not closed:
            if taken:
                part.dirty = True
            return taken
        part.dirty = True
        self._queue(closed)
        return taken + len(closed)

    def emit_and_retire(self, part: Partition, budget: int | None) -> int:
        """:meth:`emit` and :meth:`retire` at once, for a consumer catching up with a clock per
        device (``DeviceWindows.emit_and_retire``); how many windows were retired."""
        windows = part.windows
        assert isinstance(windows, DeviceWindows)  # catching up is per device only
        closed, done = windows.emit_and_retire(window_record, budget, self._window_failed(part))
        if done:
            part.dirty = True
        if closed:
            self._queue(closed)
        return done

    def _queue(self, closed: list[WindowRecord]) -> None:
        """Append the records of emitted windows to their batches and count them."""
        self.out.extend(closed)
        # Windows of a boundary share their size and end: count them per (size, end) and
        # observe the emit lag once per group (counted in C, not in a loop per window).
        groups = Counter(zip(map(_SIZE, closed), map(_END, closed), strict=True))
        due = self.clock() - self.lateness
        for (size, end), count in groups.items():
            m.WINDOWS_EMITTED.labels(f"{size}ms").inc(count)
            observe_many(m.EMIT_LAG, max(0.0, (due - end) / 1000), count)

    def _send_sealed(self, part: Partition) -> int:
        """Queue the batches of the deadlines whose windows are due and sealed whole; how many
        windows they hold. Seals a later reading voided are dropped (made again at the close)."""
        held, taken = part.sealed, 0
        partitions = self.out.partitions
        changed = [d for d, sealed in held.items() if sealed.batches.partitions != partitions]
        for deadline in changed:
            # The topic's partition count changed since: made again one by one at the close.
            m.SEALED_WINDOWS_VOIDED.inc(held.pop(deadline).batches.count)
        now = self.clock()
        for deadline, whole in part.windows.emit_sealed(window_record, held):
            sealed = held.pop(deadline)
            if not whole:
                m.SEALED_WINDOWS_VOIDED.inc(sealed.batches.count)
                continue
            self.out.add_prepared(sealed.batches, now)
            taken += sealed.batches.count
            m.WINDOWS_SENT_SEALED.inc(sealed.batches.count)
            # A deadline's windows all end at the deadline less the lateness.
            for size, count in sealed.sizes.items():
                m.WINDOWS_EMITTED.labels(f"{size}ms").inc(count)
                observe_many(m.EMIT_LAG, max(0.0, (now - deadline) / 1000), count)
        return taken

    @staticmethod
    def retire(part: Partition, budget: int | None) -> int:
        """Take emitted windows off (see :meth:`emit_slice`); the safe offset moves on."""
        retired = part.windows.retire(budget)
        if retired:
            part.dirty = True
        return retired

    def _window_failed(self, part: Partition) -> Callable[[WindowKey, int, Exception], None]:
        """The ``failed`` of ``part``'s emits: reported after the emit slice."""

        def failed(window: WindowKey, offset: int, exc: Exception) -> None:
            self.failures.append((part, window, offset, exc))

        return failed

    def take_failures(self) -> list[WindowFailure]:
        failures, self.failures = self.failures, []
        return failures
