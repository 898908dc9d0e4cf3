"""The device clocks of a commit: what the metadata holds (:class:`Checkpoint`) and how a new
owner rebuilds the clocks from the records it points at (:class:`ClockScan`); see
``device_clocks.py`` and docs/decisions/0002-window-recovery.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.telemetry.windows.model import ReadingLike

# An idle time no device reaches: no idle clock per device.
NEVER = 1 << 62
# A device's greatest ts, the offset of the record that brought it and the log clock there.
Top = tuple[int, int, int]


def shut_clock(ts: int, sizes_ms: Sequence[int], lateness_ms: int) -> int:
    """The clock that closes every window holding a reading at ``ts``: the latest deadline
    (end plus lateness) of the windows of every size around it."""
    return max(ts - ts % size + size for size in sizes_ms) + lateness_ms


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a commit records beside the safe offset: the greatest device clock
    (``watermark``), the commit point (``at``: records below it were applied), where the clock
    scan starts (``scan``) and the offset of the latest shut (``shut``, -1: none since
    ``scan``); the log clock (the greatest Kafka timestamp) at ``at``, at ``scan`` and when
    quiet devices were last woken (-1: unknown, as from an earlier version)."""

    watermark: int
    at: int
    scan: int
    shut: int = -1
    # The watermark an earlier version committed, below which every clock stays (-1: none).
    base: int = -1
    log_time: int = -1
    scan_log_time: int = -1
    woken: int = -1

    def encode(self) -> str:
        text = f"wm={self.watermark};at={self.at};scan={self.scan};shut={self.shut}"
        if self.base >= 0:
            text += f";base={self.base}"
        if self.log_time >= 0:
            text += f";lt={self.log_time};ls={self.scan_log_time};lw={self.woken}"
        return text

    @staticmethod
    def decode(text: str | None) -> Checkpoint | None:
        """The checkpoint of :meth:`encode`'s text (``;idle=`` pins may follow); None for a
        text without one (a partition-wide watermark of an earlier version: ``wm=`` alone)."""
        if not text:
            return None
        fields = dict(p.partition("=")[::2] for p in text.split(";"))
        try:
            return Checkpoint(
                int(fields["wm"]),
                int(fields["at"]),
                int(fields["scan"]),
                int(fields["shut"]),
                int(fields.get("base", -1)),
                int(fields.get("lt", -1)),
                int(fields.get("ls", -1)),
                int(fields.get("lw", -1)),
            )
        except (KeyError, ValueError):
            return None


@dataclass(slots=True)
class ClockScan:
    """Rebuilds the device clocks of a :class:`Checkpoint` from the records ``[scan, at)``, by
    the rules of ``devices.py`` and ``device_clocks.py`` (readings, the shut, the idle clock of
    a device)."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    checkpoint: Checkpoint
    idle_ms: int = NEVER
    tops: dict[str, Top] = field(default_factory=dict)
    clocks: dict[str, int] = field(default_factory=dict)
    log_time: int = -1
    _shut_done: bool = False

    def __post_init__(self) -> None:
        self.log_time = self.checkpoint.scan_log_time

    def add(
        self,
        device: str,
        readings: Sequence[ReadingLike],
        offset: int,
        skip: object,
        stamp: int = -1,
    ) -> None:
        """One record below ``at``, in offset order (the same readings the windows take), with
        its Kafka timestamp."""
        shut = self.checkpoint.shut
        if not self._shut_done and 0 <= shut <= offset:
            self._apply_shut()
        lt = self.log_time = max(self.log_time, stamp)
        known = self.tops.get(device)
        if known is not None:
            self._wake(device, known, lt)
        top = known[0] if known is not None else -1
        for r in readings:
            if r.quality is not skip and r.ts > top:
                top = r.ts
        if top >= 0 and (known is None or top > known[0]):
            self.tops[device] = (top, offset, lt)
            if top > self.clocks.get(device, -1):
                self.clocks[device] = top

    def finish(self) -> dict[str, int]:
        """The clocks at ``at``, with quiet devices woken as the commit had them."""
        if not self._shut_done and 0 <= self.checkpoint.shut <= self.checkpoint.at:
            self._apply_shut()
        if self.checkpoint.woken >= 0:
            for device, known in self.tops.items():
                self._wake(device, known, self.checkpoint.woken)
        return self.clocks

    def _wake(self, device: str, known: Top, log_time: int) -> None:
        """``DeviceWindows._wake``: the clock of a device quiet for ``idle_ms``."""
        top, _, seen = known
        if log_time - seen >= self.idle_ms:
            clock = min(top + (log_time - seen), shut_clock(top, self.sizes_ms, self.lateness_ms))
            if clock > self.clocks.get(device, -1):
                self.clocks[device] = clock

    def _apply_shut(self) -> None:
        self._shut_done = True
        for device, (top, _, _) in self.tops.items():
            clock = shut_clock(top, self.sizes_ms, self.lateness_ms)
            if clock > self.clocks.get(device, -1):
                self.clocks[device] = clock
