"""close with a limit: the same windows as one unbounded close, and the commit point held."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows


def _filled(seed: int) -> PartitionWindows:
    rng = random.Random(seed)
    pw = PartitionWindows((1000, 5000), 500)
    for offset in range(300):
        pw.add(f"d{rng.randrange(7)}", f"m{rng.randrange(3)}", rng.randrange(9000), 1.0, offset)
        pw.observe(rng.randrange(9000))
    return pw


@settings(max_examples=50)
@given(st.integers(0, 10_000), st.integers(1, 40))
def test_chunks_equal_one_close(seed: int, limit: int) -> None:
    whole, chunked = _filled(seed), _filled(seed)
    for pw in (whole, chunked):
        pw.advance_to(20_000)
    expected = whole.close()
    got: list[ClosedWindow] = []
    while chunked.has_closed:
        chunk = chunked.close(limit=limit)
        assert 0 < len(chunk) <= limit
        got.extend(chunk)
    assert got == expected
    assert chunked.open == {}
    assert chunked.open_count == 0


def test_due_windows_hold_the_safe_offset() -> None:
    pw = PartitionWindows((1000,), 0)
    pw.add("a", "t", 100, 1.0, offset=7)
    pw.add("b", "t", 200, 1.0, offset=8)
    pw.add("c", "t", 1500, 1.0, offset=9)
    pw.advance_to(1000)
    [first] = pw.close(limit=1)
    assert first.device_id == "a"
    assert pw.has_closed
    assert pw.safe_offset(10) == 8
    assert pw.add("b", "t", 300, 2.0, offset=10) == 1
    [second] = pw.close(limit=1)
    assert (second.device_id, second.count) == ("b", 1)
    assert not pw.has_closed
    assert pw.safe_offset(11) == 9
