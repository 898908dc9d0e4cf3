"""The close of a partition's windows with a clock per device (:class:`DeviceClosing`): each
step of a window's lifecycle (``__init__.py``) over the devices that have windows in it, and
the safe offset of them all."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, TypeVar

from services.telemetry.windows.model import ClosedWindow, WindowFailed

if TYPE_CHECKING:
    from services.telemetry.windows.device_clocks import Device

T = TypeVar("T")


class DeviceClosing:
    """Due windows to emitted and emitted to retired, device by device, for
    :class:`~services.telemetry.windows.devices.DeviceWindows`. No window is sealed ahead:
    sealing is paced by one partition-wide clock, which the devices do not share."""

    if not TYPE_CHECKING:
        __slots__ = ()  # the dataclass DeviceWindows declares every slot

    open_count: int
    _devices: dict[str, Device]
    # Devices that may have due windows, and devices with emitted windows (ordered sets).
    _due: dict[str, None]
    _emitted: dict[str, None]

    def has_due_at(self, watermark: int) -> bool:
        """Whether the idle clock would close some window: a shut closes every open one."""
        return self.open_count > 0

    @property
    def has_closed(self) -> bool:
        """Whether some device has a window due or emitted (see ``PartitionWindows``)."""
        return bool(self._due) or bool(self._emitted)

    @property
    def has_due(self) -> bool:
        """Whether some device has a window due, not emitted yet."""
        return bool(self._due)

    def emit(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int | None = None,
        stop: Container[int] = (),
        failed: WindowFailed | None = None,
    ) -> list[T]:
        """:meth:`PartitionWindows.emit` over the devices with windows due."""
        out: list[T] = []
        devices, due, emitted = self._devices, self._due, self._emitted
        for device in list(due):
            room = None if limit is None else limit - len(out)
            if room is not None and room <= 0:
                break
            dev = devices.get(device)
            if dev is None:  # forgotten since (nothing open)
                del due[device]
                continue
            windows = dev.windows
            out += windows.emit(make, room, (), failed)
            emitted[device] = None
            if room is None or not windows.has_due:
                del due[device]
        return out

    def emit_sealed(self, make: Callable[[ClosedWindow], Any], held: Container[int]) -> list[Any]:
        """Nothing is sealed ahead (see the class)."""
        return []

    def seal(self, *args: Any, **kwargs: Any) -> int:
        """Nothing is sealed ahead (see the class): windows are made when they are due."""
        return 0

    @property
    def sealed_ahead(self) -> int:
        """Nothing is sealed ahead (see the class)."""
        return 0

    def retire(self, limit: int | None = None) -> int:
        """:meth:`PartitionWindows.retire` over the devices with windows emitted."""
        done = 0
        devices, emitted = self._devices, self._emitted
        for device in list(emitted):
            room = None if limit is None else limit - done
            if room is not None and room <= 0:
                break
            dev = devices.get(device)
            if dev is None:  # forgotten since (nothing open)
                del emitted[device]
                continue
            windows = dev.windows
            done += windows.retire(room)
            if not windows.has_emitted:
                del emitted[device]
        self.open_count -= done
        return done

    def emit_and_retire(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int | None = None,
        failed: WindowFailed | None = None,
    ) -> tuple[list[T], int]:
        """:meth:`emit` and :meth:`retire` in one pass, device by device: each device's due
        windows are emitted and at once retired. For a consumer catching up, whose poll's
        windows all leave before the next poll anyway: a sparse backlog closes about a window
        per reading, one or two per device and poll, and a second pass over the devices (with
        its checks of what each still has to emit or retire) cost about as much as making the
        windows. Returns the results and how many windows were retired."""
        out: list[T] = []
        done = 0
        devices, due, emitted = self._devices, self._due, self._emitted
        if emitted:
            # Emitted by an earlier slice that ran out of time before their retire: a device
            # with nothing due is not met below, and its windows would hold the commit.
            done += self.retire()
        retired = 0
        for device in list(due):
            room = None if limit is None else limit - len(out)
            if room is not None and room <= 0:
                break
            dev = devices.get(device)
            if dev is None:  # forgotten since (nothing open)
                del due[device]
                continue
            windows = dev.windows
            if failed is not None and (room is None or windows.open_count <= room):
                made, gone = windows.emit_and_retire_all(make, failed)
                out += made
                retired += gone
            else:
                out += windows.emit(make, room, (), failed)
                # Every window emitted so far is retired: a prefix, in deadline order.
                retired += windows.retire()
            deadlines = windows._deadlines
            if not deadlines or deadlines[0] > windows.watermark:  # not has_due_at, inlined
                del due[device]
        self.open_count -= retired
        return out, done + retired

    def safe_offset(self, next_offset: int) -> int:
        """The offset to commit: below it every reading belongs to retired windows only.

        ``PartitionWindows.safe_offset`` of every device, written out: a commit walks every
        device of the partition, and a call per device cost more than what it reads. Each
        deadline's list is in offset order (its first window is its oldest), and every window
        began at an offset below ``next_offset``."""
        safe = next_offset
        for dev in self._devices.values():
            for windows in dev.windows._closing.values():
                first = windows[0].first_offset
                if first < safe:  # noqa: PLR1730 (a call per deadline costs more)
                    safe = first
        return safe
