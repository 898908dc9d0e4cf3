"""The seal-ahead ledger: windows that have ended made into their records before they are
due (:meth:`Sealing.seal`), and once due whether those records still hold
(:meth:`Sealing.emit_sealed`). A window's content is final at its end unless a reading within
the allowed lateness still reaches it, so the records of a boundary can be made in the quiet
time before its deadline instead of all at once (docs/decisions/0004-hot-path-decoder.md,
"The close path"). What sealing has done is kept in the window index
(:class:`~services.telemetry.windows.series.SealLedger`), which retiring a window updates too."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from services.telemetry.windows.model import ClosedWindow, closed_window
from services.telemetry.windows.series import WindowIndex
from services.telemetry.windows.stats import WindowStats

T = TypeVar("T")


class Sealing(WindowIndex):
    """Ended windows to sealed, and sealed deadlines to emitted whole (see the module)."""

    if not TYPE_CHECKING:
        __slots__ = ()  # see WindowIndex

    def seal(
        self,
        make: Callable[[ClosedWindow], T],
        limit: int,
        delay_ms: int = 0,
        finish_ms: int | None = None,
        sink: Callable[[int, list[T]], None] | None = None,
    ) -> int:
        """Ended to sealed: turn up to ``limit`` windows that have ended at least ``delay_ms``
        ago (``end + delay_ms <= watermark``, their *seal point*) but are still open to late
        readings into ``make(window)`` ahead of their close, which then costs only the
        bookkeeping; returns how many. A reading that reaches a sealed window after this voids
        its seal (it is ended again, and made at its emit), so the result is unchanged.
        Meant for the quiet time between a window's end and its close (the allowed lateness),
        instead of making a whole boundary's windows at once.

        With ``finish_ms``, sealing is paced: a deadline's windows are sealed only in proportion
        to how far the watermark has come from their seal point towards
        ``deadline - finish_ms`` (all of them from there on), so a boundary's seals are spread
        over the lateness instead of made at once.

        With ``sink``, the records go to ``sink(deadline, records)``, in each deadline's order,
        instead of staying on their windows: the caller prepares their sending ahead too, and
        once they are due :meth:`emit_sealed` tells whether it can send them as they are."""
        done = 0
        # A window's deadline is its end + lateness, ``span`` after its seal point.
        watermark, span = self.watermark, self.lateness_ms - delay_ms
        seals = self._seals
        if make is not seals.make:
            seals.restart(make)
        upto, totals, kept = seals.upto, seals.totals, seals.kept
        for deadline, windows in self._closing.items():
            if not deadline - span <= watermark < deadline:
                continue
            i = upto.get(deadline, 0)
            n = len(windows)
            if finish_ms is not None:
                begin, finish = deadline - span, deadline - finish_ms
                if begin < finish and watermark < finish:
                    # ceil(n * share): the first window as soon as the seal point is reached
                    n = min(n, -(-n * (watermark - begin + 1) // (finish - begin)))
            end = min(n, i + limit - done)
            if end <= i:
                continue
            made: list[T] = []
            total = 0
            try:
                for s in windows[i:end]:
                    key = s.key
                    # A derived window's accumulator is merged at the latest at the close.
                    count = s.count if s.pend is None else s.count + s.pend.count
                    total += count
                    if key is not None:
                        record = make(self._snapshot(s, key))
                        s.sealed_count = count
                        if sink is None:
                            s.sealed = record
                        else:
                            s.sealed = None
                            made.append(record)
            except MemoryError:
                raise
            except Exception:  # noqa: BLE001 (reported at the close, see below)
                # A window ``make`` fails for now fails at its emit too, which reports it: the
                # deadline's seals are void (made again at the emit), and sealing goes on past
                # them.
                kept.add(deadline)
            else:
                if sink is None:
                    kept.add(deadline)
                else:
                    sink(deadline, made)
            done += end - i
            upto[deadline] = end
            totals[deadline] = totals.get(deadline, 0) + total
            if done >= limit:
                break
        return done

    @property
    def sealed_ahead(self) -> int:
        """How many windows :meth:`seal` has sealed whose deadline the watermark has not
        reached yet (what sealing holds in memory ahead of the closes)."""
        watermark = self.watermark
        return sum(n for deadline, n in self._seals.upto.items() if deadline > watermark)

    def emit_sealed(
        self, make: Callable[[ClosedWindow], Any], held: Container[int]
    ) -> list[tuple[int, bool]]:
        """Sealed and due to emitted, a deadline at a time: for windows sealed with a ``sink``
        (:meth:`seal`), whose records the caller holds by deadline (``held``). For each due
        deadline, oldest first, as long as the next windows to emit are the first of a held
        deadline, whether every window the sink was given for it is unchanged since. If so,
        ``(deadline, True)``: those windows are emitted (the caller sends what its sink got),
        and the deadline's windows sealed after none (opened after its seals) follow from
        :meth:`emit`. Otherwise ``(deadline, False)``: a reading reached one of them after its
        seal (or some of its seals stayed on their windows, without the sink), so the caller
        drops what it holds and :meth:`emit` makes the deadline's windows one by one. What is
        emitted, and in which order, is what :meth:`emit` alone gives."""
        out: list[tuple[int, bool]] = []
        seals = self._seals
        if make is not seals.make:
            return out
        watermark, emitted = self.watermark, self._emitted
        for deadline in sorted(d for d in self._deadlines if d <= watermark):
            windows = self._closing[deadline]
            i = emitted.get(deadline, 0)
            if i == len(windows):
                continue
            if i or deadline not in held:
                break
            n = seals.upto.get(deadline, 0)
            whole = (
                n > 0
                and deadline not in seals.kept  # the sink did not get them all
                and self._counted(windows, n) == seals.totals.get(deadline)
            )
            out.append((deadline, whole))
            if not whole:
                break
            emitted[deadline] = n
            if n < len(windows):
                break
        return out

    @staticmethod
    def _counted(windows: list[WindowStats], n: int) -> int:
        """The readings the first ``n`` windows hold, their accumulators included. It only
        grows (a merge moves readings from an accumulator into its window): equal to the sum at
        their seals, none of them changed since."""
        total = 0
        for s in windows[:n]:
            pend = s.pend
            total += s.count if pend is None else s.count + pend.count
        return total

    def _snapshot(self, s: WindowStats, key: tuple[str, str]) -> ClosedWindow:
        """The window as it will be once its accumulator is merged (the same merge on a copy,
        the same bits): for a window still open to late readings."""
        pend = s.pend
        if pend is not None:
            s = msgspec.structs.replace(s, pend=None, sealed=None)
            s.merge(pend)
        return closed_window(s, key, self.sizes_ms[s.size_index])
