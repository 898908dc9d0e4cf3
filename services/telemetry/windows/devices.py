"""Event time per device: the windows of one Kafka partition, each device on its own clock.

A device's windows close on that device's clock: the greatest ``ts`` it has sent, so a gateway
uploading its backlog neither closes nor is closed by another device's newer readings on the
same partition. Each device's windows are a :class:`PartitionWindows` of their own whose
watermark is the device's clock; what that class proves for one stream (a replay rebuilds every
window bit for bit) holds for each device's readings, which are a sub-stream in offset order.

Three moves keep the clocks bounded and quiet devices closed:

- The **floor** ``watermark - horizon_ms`` (``watermark``: the greatest ``ts`` of the
  partition, or where a shut moved it): no device's clock is below it, and what a quiet device
  left open closes once the floor passes it. A device at the floor with no open window is
  forgotten (its next reading starts at the floor). A backlog older than the horizon
  behind the partition's newest device is late.
- The **idle clock of a device**: a device that brings nothing for ``idle_ms`` of the *log
  clock* (the greatest Kafka timestamp of the partition's records, which the broker or the
  producer stamps as they are written) has its clock follow the log clock from its greatest
  ``ts`` on, as if it had gone on sending, up to the deadline of its newest windows and no
  further. So a device that stops while its partition goes on has its windows closed within
  about ``idle_ms`` plus the lateness after they end, and a gateway that uploads its backlog
  later loses only what those windows would have held. The log clock is in the records, so a
  replay decides the same: the rule is applied to a device before each of its records, and
  between its records for every quiet device (``_wake_quiet``, which only makes the windows
  close sooner: the device's next record would find them closed by the same rule).
- The **shut**: a quiet partition (the idle clock, wall time; no record brings a log clock)
  closes every device's open windows by moving each clock to the deadline of its newest
  windows (:func:`shut_clock` of the greatest ``ts`` the device sent), no further.

Recovery (docs/decisions/0002-window-recovery.md): the consumer commits the safe offset (the
first offset of the oldest window not yet retired) with :class:`Checkpoint` in the metadata.
Per-device clocks do not fit in it; what does is where they can be read again: ``scan``, the
oldest offset that defines the clock of a device above the floor or with windows open, and
the log clock there, at ``at`` and when quiet devices were last woken. The new owner reads the
records from ``scan`` up to the commit point ``at`` once to rebuild the clocks
(:class:`ClockScan`), then replays from the safe offset, as one stream would, with every clock
as it was at ``at``.

This module adds records and moves the clocks; the close, device by device, is
``device_closing.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from services.telemetry.windows.clocks import NEVER, Checkpoint, Top, shut_clock
from services.telemetry.windows.device_closing import DeviceClosing
from services.telemetry.windows.model import ReadingLike, RecordFailedError, WindowKey
from services.telemetry.windows.partition import PartitionWindows
from services.telemetry.windows.stats import HUGE, WindowStats

# (device, offset, [(reading, late mask)]): one record's readings that were late.
LateRecord = tuple[str, int, list[tuple[ReadingLike, int]]]
_ANCHOR = attrgetter("anchor")


class Device:
    """One device: its windows (their watermark is its clock); the offset that defines the
    clock (``anchor``: a replay reading from there rebuilds it) and the log clock there
    (``anchor_lt``); its greatest ``ts`` (``top``), the offset of the record that brought it
    (``top_at``) and the log clock there (``seen``), which its idle clock runs from."""

    __slots__ = ("anchor", "anchor_lt", "seen", "top", "top_at", "windows")

    def __init__(self, windows: PartitionWindows, offset: int, log_time: int) -> None:
        self.windows = windows
        self.anchor = self.top_at = offset
        self.anchor_lt = self.seen = log_time
        self.top = -1


@dataclass(slots=True)
class DeviceWindows(DeviceClosing):
    """The open windows of one partition, each device on its own clock (see the module)."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    horizon_ms: int
    # How long a device may bring nothing, by the log clock, before its clock follows it
    # (the idle clock of a device; the default never).
    idle_ms: int = NEVER
    watermark: int = -1
    # The log clock: the greatest Kafka timestamp of the records added.
    log_time: int = -1
    # The offset of the latest shut (-1: none yet).
    shut_at: int = -1
    open_count: int = 0
    # A partition-wide watermark restored from an earlier version's commit: every clock starts
    # there, as that version judged every device by it.
    base: int = -1
    # The commit point a replay started below: those records were judged before the crash,
    # with the clocks restored as they were there, so they wake no quiet device.
    replay_at: int = -1
    _devices: dict[str, Device] = field(default_factory=dict)
    # Devices with windows their clock has closed and not emitted yet, and devices with windows
    # emitted and not retired yet (ordered sets).
    _due: dict[str, None] = field(default_factory=dict)
    _emitted: dict[str, None] = field(default_factory=dict)
    # The floor when devices were last swept for windows it closes (see _sweep).
    _swept: int = -1
    _step: int = 0
    # The log clock when quiet devices were last woken (see _wake_quiet).
    _woken: int = -1
    _ints: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._step = min(self.sizes_ms) if self.sizes_ms else 1

    @property
    def floor(self) -> int:
        return max(self.base, self.watermark - self.horizon_ms if self.watermark >= 0 else -1)

    def restore(
        self,
        checkpoint: Checkpoint,
        clocks: dict[str, int],
        tops: dict[str, Top] | None = None,
    ) -> None:
        """Set the clocks a :class:`ClockScan` rebuilt, as they were at the commit point, with
        each device's greatest ``ts`` and where it came (``tops``: its idle clock runs from
        there)."""
        self.watermark = max(self.watermark, checkpoint.watermark)
        self.base = max(self.base, checkpoint.base)
        self.shut_at = checkpoint.shut
        self.log_time = max(self.log_time, checkpoint.log_time)
        # The clocks are as that last wake left them: so are those of the next checkpoint.
        self._woken = checkpoint.woken
        self.replay_at = checkpoint.at
        floor = self.floor
        tops = tops or {}
        for device in clocks.keys() | tops.keys():
            clock = clocks.get(device, -1)
            top = tops.get(device)
            # A device at the floor may still have windows open (they end after it).
            if clock > floor or (top is not None and self._shut_clock(top[0]) > floor):
                dev = self._device(device, checkpoint.scan, checkpoint.scan_log_time)
                dev.windows.advance_to(clock)
                if top is not None:
                    dev.top, dev.top_at, dev.seen = top

    def _shut_clock(self, ts: int) -> int:
        return shut_clock(ts, self.sizes_ms, self.lateness_ms) if ts >= 0 else -1

    def _device(self, device: str, offset: int, log_time: int) -> Device:
        dev = self._devices.get(device)
        if dev is None:
            # Window starts and ends are shared int objects across the devices too.
            windows = PartitionWindows(self.sizes_ms, self.lateness_ms, _ints=self._ints)
            windows.advance_to(self.floor)
            dev = self._devices[sys.intern(device)] = Device(windows, offset, log_time)
        return dev

    def add_records(  # noqa: PLR0915 (the hot path, written out)
        self,
        records: Iterable[tuple[str, Sequence[ReadingLike], int, int]],
        skip: object,
        late_out: list[LateRecord] | None = None,
    ) -> tuple[int, int, dict[int, int]]:
        """:meth:`PartitionWindows.add_records` with each record's readings on its device's
        clock; each record is (device, readings, offset, Kafka timestamp), and each with late
        readings is appended to ``late_out``."""
        devices, due = self._devices, self._due
        added = skipped = 0
        late: dict[int, int] = {}
        wm, base, horizon = self.watermark, self.base, self.horizon_ms
        lt, idle, replay_at = self.log_time, self.idle_ms, self.replay_at
        late_readings: list[tuple[ReadingLike, int]] | None = None
        if late_out is not None:
            late_readings = []
        huge = HUGE
        offset = -1
        # The previous record's device, and what the loop looked up for it: a run of records
        # of one device (a gateway sends a device's metrics one per message) shares them.
        device = ""
        dev: Device | None = None
        for name, readings, offset, stamp in records:
            if stamp > lt:  # noqa: PLR1730 (once per record: no call)
                lt = stamp
            if dev is None or name != device:
                device = name
                dev = devices.get(device)
                if dev is None:
                    dev = self._device(device, offset, lt)
                windows = dev.windows
                if lt - dev.seen >= idle and offset >= replay_at and windows.open_count:
                    self._wake(device, dev, lt)
                start = windows.watermark
                floor = wm - horizon
                if floor < base:  # noqa: PLR1730 (once per record: no call)
                    floor = base
                if start < floor:
                    windows.advance_to(floor)
                    before = floor
                else:
                    before = start
                get, opened = windows._series.get, windows.open_count
            else:
                # The same device: its clock is at or above the floor since its previous
                # record, as only its own clock moved the partition's watermark (and the
                # floor with it, a horizon behind) meanwhile.
                if lt - dev.seen >= idle and offset >= replay_at and windows.open_count:
                    self._wake(device, dev, lt)
                start = before = windows.watermark
            # PartitionWindows.add_records of one record, written out here: a call and its
            # setup per record cost about as much as a reading's statistics.
            clock, slow = before, False
            top = was = dev.top
            try:
                for r in readings:
                    if r.quality is skip:
                        skipped += 1
                        continue
                    metric, ts, value = r.metric, r.ts, float(r.value)
                    key = (device, metric)
                    series = get(key)
                    if (
                        series is not None
                        and series.deadline > clock
                        and series.lo <= ts < series.hi
                    ):
                        for w in series.current:  # add_records' inlined WindowStats.add
                            if value < w.min:
                                if value < -huge:
                                    series.deadline = -1
                                    w.add(ts, value)
                                    continue
                                w.min = value
                            if value > w.max:
                                if value > huge:
                                    series.deadline = -1
                                    w.add(ts, value)
                                    continue
                                w.max = value
                            n = w.count = w.count + 1
                            delta = value - w.mean
                            w.mean += delta / n
                            w.m2 += delta * (value - w.mean)
                            if ts >= w.last_ts:
                                w.last_ts = ts
                                w.last = value
                    else:
                        slow = True
                        windows.watermark = clock
                        mask = windows._add(series, key, ts, value, offset)
                        if mask:
                            late[mask] = late.get(mask, 0) + 1
                            if late_readings is not None:
                                late_readings.append((r, mask))
                    if ts > top:  # the clock is at least the top: one test when neither moves
                        top = ts
                        if ts > clock:  # noqa: PLR1730 (a call per reading costs more)
                            clock = ts
                    added += 1
            except Exception as exc:
                # As PartitionWindows.add_records: the readings before the failure stay.
                windows.watermark = clock
                self.watermark = wm if wm > clock else clock
                self.log_time = lt
                if top > was:
                    dev.top, dev.top_at, dev.seen = top, offset, lt
                self.open_count += windows.open_count - opened
                if windows.has_closed:
                    due[device] = None
                raise RecordFailedError(offset) from exc
            windows.watermark = clock
            if slow:
                self.open_count += windows.open_count - opened
                opened = windows.open_count
                if late_readings:
                    late_out.append((device, offset, late_readings))  # type: ignore[union-attr]
                    late_readings = []
            if top > was:
                dev.top, dev.top_at, dev.seen = top, offset, lt
                if clock > before:
                    dev.anchor, dev.anchor_lt = offset, lt
                    if clock > wm:  # noqa: PLR1730 (once per record: no call)
                        wm = clock
            if clock > start:
                # windows.has_closed, without two calls per record
                deadlines = windows._deadlines
                if deadlines and deadlines[0] <= clock:
                    due[device] = None
        self.watermark, self.log_time = wm, lt
        if self.floor >= self._swept + self._step:
            self._sweep()
        if lt >= self._woken + idle // 2 and offset >= replay_at:
            self._wake_quiet()
        return added, skipped, late

    def _wake(self, device: str, dev: Device, log_time: int) -> None:
        """The idle clock of a quiet device with windows open: its clock follows the log clock
        from its greatest ``ts`` on, up to the deadline of its newest windows (see the
        module)."""
        windows = dev.windows
        deadlines = windows._deadlines
        clock = min(dev.top + (log_time - dev.seen), max(deadlines))
        if clock > windows.watermark:
            windows.watermark = clock
            if deadlines[0] <= clock:
                self._due[device] = None

    def _wake_quiet(self) -> None:
        """Move the clock of every device quiet for ``idle_ms`` of the log clock, so that its
        windows close without waiting for its next record. Only when the windows close
        depends on when this runs: a device's next record wakes it first, by the same rule,
        and what it finds is the same either way. Committed (``woken``), so that the clocks a
        new owner rebuilds are the ones this committed with."""
        self._woken = log_time = self.log_time
        idle = self.idle_ms
        for device, dev in self._devices.items():
            if dev.windows.open_count and log_time - dev.seen >= idle:
                self._wake(device, dev, log_time)

    def sweep(self) -> None:
        """Close every window the floor has passed, before a commit.

        :meth:`add_records` sweeps only when the floor has moved a whole window step, to keep
        the walk over every device off each poll. A commit cannot wait for that: the restored
        clocks start at the committed floor, so a window the floor had passed but not closed
        yet would take its replayed readings for late and be lost. Swept here, it is due, and
        the commit waits for its emit as for any due window."""
        if self.floor > self._swept:
            self._sweep()

    def _sweep(self) -> None:
        """Close the windows the floor has passed (of devices gone quiet while the partition
        goes on) and forget the devices at the floor with none open."""
        floor = self._swept = self.floor
        for device, dev in list(self._devices.items()):
            windows = dev.windows
            if windows.watermark <= floor:
                if not windows.open_count:
                    del self._devices[device]
                    continue
                windows.advance_to(floor)
                if windows.has_closed:
                    self._due[device] = None

    def shut(self, offset: int, watermark: int) -> None:
        """The idle clock at ``offset`` (the next record's): every device's open windows
        close, and the partition's watermark follows the wall clock to ``watermark``."""
        self.shut_at = offset
        self.watermark = max(self.watermark, watermark)
        for device, dev in self._devices.items():
            closing = self._shut_clock(dev.top)
            # The watermark takes every device's, whether or not its idle clock got there
            # first: that depends on when quiet devices were woken, which a replay does not
            # repeat.
            self.watermark = max(self.watermark, closing)
            windows = dev.windows
            if windows.open_count and closing > windows.watermark:
                windows.advance_to(closing)
                dev.anchor, dev.anchor_lt = dev.top_at, dev.seen
            if windows.has_closed:
                self._due[device] = None

    def advance_to(self, watermark: int) -> None:
        """Restore a watermark (nothing closes: a device's clock moves with its readings)."""
        self.watermark = max(self.watermark, watermark)

    @property
    def series_count(self) -> int:
        return sum(dev.windows.series_count for dev in self._devices.values())

    @property
    def open(self) -> dict[WindowKey, WindowStats]:
        out: dict[WindowKey, WindowStats] = {}
        for dev in self._devices.values():
            out |= dev.windows.open
        return out

    def clock(self, device: str) -> int:
        """A device's clock (the floor for a device it does not hold)."""
        dev = self._devices.get(device)
        return max(self.floor, dev.windows.watermark) if dev is not None else self.floor

    def checkpoint(self, next_offset: int) -> Checkpoint:
        """The commit metadata at the commit point ``next_offset``."""
        floor = self.floor
        # The devices whose clock a new owner must read again: above the floor, or with
        # windows still open (their greatest ts and where it came are what their idle
        # clock runs from).
        held = [
            d for d in self._devices.values() if d.windows.watermark > floor or d.windows.open_count
        ]
        first = min(held, key=_ANCHOR, default=None)
        scan, scan_lt = (first.anchor, first.anchor_lt) if first else (next_offset, -1)
        scan = min(scan, next_offset)
        shut = self.shut_at if self.shut_at >= scan else -1
        return Checkpoint(
            self.watermark,
            next_offset,
            scan,
            shut,
            self.base,
            self.log_time,
            scan_lt,
            self._woken,
        )
