"""Event-time tumbling windows of one Kafka partition (:class:`PartitionWindows`).

Windows are aligned to the Unix epoch (``start = ts - ts % size``, ``end`` exclusive). A window
is due when the partition's watermark (greatest event time seen, or advanced by wall clock
while the partition is idle) reaches its deadline, ``end + allowed_lateness``. A reading whose
window is already due is *late*: it is counted and never mixed into a closed window.

Recovery without a state store: the consumer commits, per partition, only the offset of the
first reading of the oldest window not yet retired, together with the watermark. After a crash
the new owner restores that watermark and replays from that offset; readings of windows that
had already closed are recognised by the restored watermark and skipped, and the open windows
are rebuilt from exactly the readings they had, in the same order, so a re-emitted window is
identical (same ``ce_id``, same content).

This module holds the state and the hot loop (:meth:`PartitionWindows.add_records`); the
general path of a reading is ``adding.py``, sealing ahead ``ledger.py``, the close
``closing.py``, the index they share ``series.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.telemetry.windows.adding import Adding
from services.telemetry.windows.closing import Closing
from services.telemetry.windows.ledger import Sealing
from services.telemetry.windows.model import ReadingLike, RecordFailedError, WindowKey
from services.telemetry.windows.series import NONE, SealLedger, Series, layout_of
from services.telemetry.windows.stats import HUGE, WindowStats


@dataclass(slots=True)
class PartitionWindows(Adding, Sealing, Closing):
    """The open windows, watermark and safe commit point of one partition."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    watermark: int = -1
    open_count: int = 0
    _series: dict[tuple[str, str], Series] = field(default_factory=dict)
    # Windows that close together share one entry: deadline -> windows, plus a heap of deadlines.
    _closing: dict[int, list[WindowStats]] = field(default_factory=dict)
    _deadlines: list[int] = field(default_factory=list)
    # Window starts, ends and deadlines are the same few numbers for every series (windows are
    # aligned to the epoch): one shared int object each instead of one per window and series.
    _ints: dict[int, int] = field(default_factory=dict)
    # What seal() has made ahead of the close (see ledger.py).
    _seals: SealLedger = field(default_factory=SealLedger)
    # Deadline -> how many windows at the front of its list are emitted (not retired yet).
    _emitted: dict[int, int] = field(default_factory=dict)
    # The layout of the sizes on a series (see series.Layout), copied here for the hot path.
    _hot: tuple[int, ...] = ()
    _derived: tuple[int, ...] = ()
    _slot: tuple[int, ...] = ()
    _is_derived: tuple[bool, ...] = ()
    _no_windows: tuple[WindowStats, ...] = ()
    _no_derived: tuple[WindowStats, ...] = ()
    _roll_sizes: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        (
            self._hot,
            self._derived,
            self._slot,
            self._is_derived,
            self._no_windows,
            self._no_derived,
            self._roll_sizes,
        ) = layout_of(self.sizes_ms)

    @property
    def series_count(self) -> int:
        """How many (device, metric) series hold windows (a series with none left is dropped)."""
        return len(self._series)

    @property
    def open(self) -> dict[WindowKey, WindowStats]:
        """Every open window by key (for inspection and tests; the hot path never builds it)."""
        out: dict[WindowKey, WindowStats] = {}
        for (device, metric), series in self._series.items():
            for w in (*series.current, *series.derived, *series.older):
                if w is not NONE and w.key is not None:
                    out[(device, metric, self.sizes_ms[w.size_index], w.start)] = w
        return out

    def add_records(
        self,
        records: Iterable[tuple[str, Sequence[ReadingLike], int]],
        skip: object,
        late_out: list[tuple[ReadingLike, int]] | None = None,
    ) -> tuple[int, int, dict[int, int]]:
        """Add every reading of ``(device_id, readings, offset)`` records in order, advancing
        the watermark after each (the hot path: one call per poll and partition).

        Readings whose ``quality`` is ``skip`` are left out. Returns the number of readings
        added, the number left out, and how many readings were late per late mask (see
        :meth:`add`). Nothing here raises for a reading the decoder accepted; should it anyway,
        :class:`RecordFailedError` names the record, with the watermark where the readings
        before the failure took it: a replay, doing the same, gets the same windows.
        With ``late_out``, every late reading is appended to it with its late mask.
        """
        if not self.sizes_ms:
            return self._watermark_only(records, skip)
        get = self._series.get
        slow = self._add
        huge = HUGE
        wm = self.watermark
        added = skipped = 0
        late: dict[int, int] = {}
        offset = -1
        try:
            for device, readings, offset in records:
                for r in readings:
                    if r.quality is skip:
                        skipped += 1
                        continue
                    metric, ts, value = r.metric, r.ts, float(r.value)
                    key = (device, metric)
                    series = get(key)
                    if series is not None and series.deadline > wm and series.lo <= ts < series.hi:
                        # WindowStats.add inlined: this is the innermost loop of the hot path. A
                        # value beyond HUGE is a new min or max: only then is it looked at, and
                        # its window goes scaled, its series off this path (see _refresh).
                        for s in series.current:
                            if value < s.min:
                                if value < -huge:
                                    series.deadline = -1
                                    s.add(ts, value)
                                    continue
                                s.min = value
                            if value > s.max:
                                if value > huge:
                                    series.deadline = -1
                                    s.add(ts, value)
                                    continue
                                s.max = value
                            n = s.count = s.count + 1
                            delta = value - s.mean
                            s.mean += delta / n
                            s.m2 += delta * (value - s.mean)
                            if ts >= s.last_ts:
                                s.last_ts = ts
                                s.last = value
                    else:
                        self.watermark = wm
                        mask = slow(series, key, ts, value, offset)
                        if mask:
                            late[mask] = late.get(mask, 0) + 1
                            if late_out is not None:
                                late_out.append((r, mask))
                    if ts > wm:  # noqa: PLR1730 (a call per reading costs more)
                        wm = ts
                    added += 1
        except Exception as exc:
            self.watermark = wm
            raise RecordFailedError(offset) from exc
        self.watermark = wm
        return added, skipped, late

    def _watermark_only(
        self, records: Iterable[tuple[str, Sequence[ReadingLike], int]], skip: object
    ) -> tuple[int, int, dict[int, int]]:
        """:meth:`add_records` without window sizes (a process that only runs alarms): the
        watermark and the counts, nothing else."""
        wm = self.watermark
        added = skipped = 0
        for _, readings, _ in records:
            for r in readings:
                if r.quality is skip:
                    skipped += 1
                    continue
                ts = r.ts
                if ts > wm:  # noqa: PLR1730 (a call per reading costs more)
                    wm = ts
                added += 1
        self.watermark = wm
        return added, skipped, {}

    def add(self, device_id: str, metric: str, ts: int, value: float, offset: int) -> int:
        """Add one reading to its window of every size (the watermark is not moved: call
        :meth:`observe` after it).

        Returns a bit mask of the sizes (bit i for ``sizes_ms[i]``) whose window had already
        closed, so the reading was late there and left out; 0 when it was on time everywhere.
        """
        key = (device_id, metric)
        return self._add(self._series.get(key), key, ts, value, offset)

    def observe(self, ts: int) -> None:
        """Advance the watermark with a reading's event time (call after adding it)."""
        self.watermark = max(self.watermark, ts)

    def advance_to(self, watermark: int) -> None:
        """Advance the watermark by wall clock (idle partition); never moves it back."""
        self.watermark = max(self.watermark, watermark)
