"""The device clocks of a commit: what the metadata holds (:class:`Checkpoint`) and how a new
owner rebuilds the clocks from the records it points at (:class:`ClockScan`); see
``devices.py`` and docs/decisions/0002-window-recovery.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.telemetry.windows.model import ReadingLike


def shut_clock(ts: int, sizes_ms: Sequence[int], lateness_ms: int) -> int:
    """The clock that closes every window holding a reading at ``ts``: the latest deadline
    (end plus lateness) of the windows of every size around it."""
    return max(ts - ts % size + size for size in sizes_ms) + lateness_ms


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a commit records beside the safe offset: the greatest device clock
    (``watermark``), the commit point (``at``: records below it were applied), where the clock
    scan starts (``scan``) and the offset of the latest shut (``shut``, -1: none since
    ``scan``)."""

    watermark: int
    at: int
    scan: int
    shut: int = -1
    # The watermark an earlier version committed, below which every clock stays (-1: none).
    base: int = -1

    def encode(self) -> str:
        text = f"wm={self.watermark};at={self.at};scan={self.scan};shut={self.shut}"
        return text if self.base < 0 else f"{text};base={self.base}"

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
            )
        except (KeyError, ValueError):
            return None


@dataclass(slots=True)
class ClockScan:
    """Rebuilds the device clocks of a :class:`Checkpoint` from the records ``[scan, at)``."""

    sizes_ms: tuple[int, ...]
    lateness_ms: int
    checkpoint: Checkpoint
    tops: dict[str, int] = field(default_factory=dict)
    clocks: dict[str, int] = field(default_factory=dict)
    _shut_done: bool = False

    def add(self, device: str, readings: Sequence[ReadingLike], offset: int, skip: object) -> None:
        """One record below ``at``, in offset order (the same readings the windows take)."""
        shut = self.checkpoint.shut
        if not self._shut_done and 0 <= shut <= offset:
            self._apply_shut()
        top = self.tops.get(device, -1)
        for r in readings:
            if r.quality is not skip and r.ts > top:
                top = r.ts
        if top >= 0:
            self.tops[device] = top
            if top > self.clocks.get(device, -1):
                self.clocks[device] = top

    def finish(self) -> dict[str, int]:
        """The clocks at ``at`` of the devices above the floor."""
        if not self._shut_done and 0 <= self.checkpoint.shut <= self.checkpoint.at:
            self._apply_shut()
        return self.clocks

    def _apply_shut(self) -> None:
        self._shut_done = True
        for device, top in self.tops.items():
            clock = shut_clock(top, self.sizes_ms, self.lateness_ms)
            if clock > self.clocks.get(device, -1):
                self.clocks[device] = clock
