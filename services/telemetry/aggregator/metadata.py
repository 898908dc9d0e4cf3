"""The commit metadata: what a partition's commit carries beside its safe offset, so that the
next owner rebuilds the same event time (docs/decisions/0002-window-recovery.md).

Two shapes, by the partition's clock:

- one clock per partition (``MILLRACE_TELEMETRY_EVENT_TIME=partition``): ``wm=<watermark>``;
- a clock per device: the :class:`~services.telemetry.windows.clocks.Checkpoint` text
  (``wm=..;at=..;scan=..;shut=..;lt=..;ls=..;lw=..``), which says where the device clocks can be
  read again, since they do not fit in the metadata themselves.

Either may end in ``;idle=<watermark>@<offset>``: the idle clock moved the watermark there
before the record at that offset, and a replay repeats it there (a replay sees no idle time).
A ``wm=`` alone read by a per-device owner is a partition-wide watermark of an earlier version.
"""

from __future__ import annotations

from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.partition import PartitionWindows


def encode_metadata(watermark: int, idle: tuple[int, int] | None = None) -> str:
    """``wm=<watermark>``, and with ``idle`` (offset, watermark) ``;idle=<watermark>@<offset>``:
    the idle clock moved the watermark there before the record at that offset."""
    return _with_idle(f"wm={watermark}", idle)


def commit_metadata(
    windows: PartitionWindows | DeviceWindows, next_offset: int, idle: tuple[int, int] | None
) -> str:
    """The metadata of a commit of ``windows`` with records applied up to ``next_offset``."""
    if isinstance(windows, DeviceWindows):
        return _with_idle(windows.checkpoint(next_offset).encode(), idle)
    return encode_metadata(windows.watermark, idle)


def decode_metadata(metadata: str | None) -> int:
    """The watermark of :func:`encode_metadata`'s text (-1 if there is none)."""
    if metadata and metadata.startswith("wm="):
        try:
            return int(metadata[3:].split(";", 1)[0])
        except ValueError:
            return -1
    return -1


def decode_idle(metadata: str | None) -> tuple[int, int] | None:
    """The (offset, watermark) of the idle clock's advance in :func:`encode_metadata`'s text."""
    if not metadata or ";idle=" not in metadata:
        return None
    watermark, _, offset = metadata.split(";idle=", 1)[1].partition("@")
    try:
        return int(offset), int(watermark)
    except ValueError:
        return None


def _with_idle(text: str, idle: tuple[int, int] | None) -> str:
    return text if idle is None else f"{text};idle={idle[1]}@{idle[0]}"
