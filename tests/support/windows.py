"""Hypothesis strategies for the window tests: polls of readings of a few series, in and out
of order, some of quality ``BAD``; and window configurations (sizes, allowed lateness)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hypothesis import strategies as st

from services.telemetry.windows.model import ClosedWindow

BAD = object()


@dataclass
class R:
    metric: str
    ts: int
    value: float
    quality: object = None


records = st.lists(
    st.tuples(
        st.sampled_from(["d0", "d1", "d2"]),
        st.lists(
            st.builds(
                R,
                st.sampled_from(["t", "p"]),
                st.integers(0, 30_000),
                st.floats(-1e6, 1e6, allow_nan=False),
                st.sampled_from([None, None, None, BAD]),
            ),
            min_size=1,
            max_size=4,
        ),
    ),
    max_size=120,
)
configs = st.sampled_from(
    [((1000, 5000), 500), ((1000,), 0), ((1000, 3000, 6000), 2500), ((500,), 1700)]
)


def same(w: ClosedWindow) -> ClosedWindow:
    """The ``make`` of ``close``/``seal`` that returns the window itself."""
    return w


# A stream for the aggregator-like drives of the window tests: (series, ms the clock moves on,
# ms the reading lags behind the clock, value, what the drive does after it).
Step = tuple[int, int, int, float, int]


def stepped(
    steps: list[Step], start_offset: int = 0, stop_at: int | None = None
) -> Iterator[tuple[int, str, R, int]]:
    """(offset, device, reading, what follows) of each step from ``start_offset`` on, up to
    ``stop_at``: two metrics per device, the reading's ts the clock less its lag."""
    clock = 0
    for offset, (series, step, lag, value, then) in enumerate(steps):
        clock += step
        if offset == stop_at:
            return
        if offset >= start_offset:
            yield offset, f"d{series // 2}", R(f"m{series % 2}", max(0, clock - lag), value), then


def assert_replayed(got: list[ClosedWindow], want: list[ClosedWindow]) -> None:
    """``got`` (a run with a crash and its replay) holds every window of ``want`` (the run
    without), and a window emitted twice was the same both times (dedupe by its key)."""
    deduped = {(w.device_id, w.metric, w.size_ms, w.window_start): w for w in got}
    assert all(deduped[(w.device_id, w.metric, w.size_ms, w.window_start)] == w for w in got)
    assert sorted(deduped.values(), key=repr) == sorted(want, key=repr)
