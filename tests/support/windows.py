"""Hypothesis strategies for the window tests: polls of readings of a few series, in and out
of order, some of quality ``BAD``; and window configurations (sizes, allowed lateness)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from services.telemetry.domain.windows import ClosedWindow

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
    """The ``make`` of ``close_due_as``/``seal_ended`` that returns the window itself."""
    return w
