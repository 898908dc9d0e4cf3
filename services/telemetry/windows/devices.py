"""Event time per device: the windows of one Kafka partition, each device on its own clock.

A device's windows close on that device's clock: the greatest ``ts`` it has sent, so a gateway
uploading its backlog neither closes nor is closed by another device's newer readings on the
same partition. Each device's windows are a :class:`PartitionWindows` of their own whose
watermark is the device's clock; what that class proves for one stream (a replay rebuilds every
window bit for bit) holds for each device's readings, which are a sub-stream in offset order.

Each record's readings are added on its device's clock here (:meth:`DeviceWindows.add_records`,
the hot loop, written out); how the clocks move besides, the floor, the idle clock of a device
and the shut of a quiet partition, and what a commit records of them, is ``device_clocks.py``;
the close, device by device, is ``device_closing.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.telemetry.windows.clocks import NEVER
from services.telemetry.windows.device_clocks import Device, DeviceClocks
from services.telemetry.windows.device_closing import DeviceClosing
from services.telemetry.windows.model import ReadingLike, RecordFailedError, WindowKey
from services.telemetry.windows.partition import PartitionWindows
from services.telemetry.windows.stats import HUGE, WindowStats

# (device, offset, [(reading, late mask)]): one record's readings that were late.
LateRecord = tuple[str, int, list[tuple[ReadingLike, int]]]


@dataclass(slots=True)
class DeviceWindows(DeviceClocks, DeviceClosing):
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

    @property
    def series_count(self) -> int:
        return sum(dev.windows.series_count for dev in self._devices.values())

    @property
    def open(self) -> dict[WindowKey, WindowStats]:
        out: dict[WindowKey, WindowStats] = {}
        for dev in self._devices.values():
            out |= dev.windows.open
        return out
