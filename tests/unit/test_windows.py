"""Window arithmetic, lateness and the replay invariant of the telemetry domain."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from services.telemetry.domain.windows import ClosedWindow, PartitionWindows

Reading = tuple[str, str, int, float]  # device, metric, ts, value
Key = tuple[str, str, int, int]
Stats = tuple[float, ...]


def run(
    readings: list[Reading],
    sizes: tuple[int, ...] = (1000, 5000),
    lateness: int = 500,
    start_offset: int = 0,
    wm: int = -1,
) -> tuple[PartitionWindows, list[ClosedWindow], int]:
    pw = PartitionWindows(sizes, lateness)
    pw.advance_to(wm)
    out: list[ClosedWindow] = []
    late = 0
    for offset, (dev, met, ts, val) in enumerate(readings, start=start_offset):
        late += bin(pw.add(dev, met, ts, val, offset)).count("1")
        pw.observe(ts)
        out.extend(pw.close_due())
    return pw, out, late


def flush(pw: PartitionWindows) -> list[ClosedWindow]:
    pw.advance_to(2**62)
    return pw.close_due()


def reference(readings: list[Reading], sizes: tuple[int, ...], lateness: int) -> dict[Key, Stats]:
    """Independent computation: group on-time readings by window, compute with statistics."""
    wm = -1
    groups: dict[Key, list[tuple[int, float]]] = defaultdict(list)
    for dev, met, ts, val in readings:
        for size in sizes:
            start = ts - ts % size
            if start + size + lateness > wm:
                groups[(dev, met, size, start)].append((ts, val))
        wm = max(wm, ts)
    out: dict[Key, Stats] = {}
    for key, vals in groups.items():
        values = [v for _, v in vals]
        last = max(enumerate(vals), key=lambda iv: (iv[1][0], iv[0]))[1][1]
        out[key] = (
            len(values),
            min(values),
            max(values),
            statistics.fmean(values),
            statistics.pstdev(values),
            last,
        )
    return out


def as_dict(windows: list[ClosedWindow]) -> dict[Key, Stats]:
    return {
        (w.device_id, w.metric, w.size_ms, w.window_start): (
            w.count,
            w.min,
            w.max,
            w.mean,
            w.stddev,
            w.last,
        )
        for w in windows
    }


def assert_close(a: dict[Key, Stats], b: dict[Key, Stats]) -> None:
    assert a.keys() == b.keys()
    for k, got in a.items():
        for x, y in zip(got, b[k], strict=True):
            assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), (k, got, b[k])


def test_epoch_aligned_windows_and_exclusive_end() -> None:
    pw, out, _ = run(
        [("d", "m", 999, 1.0), ("d", "m", 1000, 2.0), ("d", "m", 1999, 3.0)],
        sizes=(1000,),
        lateness=0,
    )
    out += flush(pw)
    got = {(w.window_start, w.window_end): (w.count, w.last) for w in out}
    assert got == {(0, 1000): (1, 1.0), (1000, 2000): (2, 3.0)}


def test_window_closes_only_after_lateness() -> None:
    pw = PartitionWindows((1000,), 500)
    pw.add("d", "m", 100, 1.0, 0)
    pw.observe(100)
    pw.observe(1499)
    assert pw.close_due() == []
    pw.observe(1500)
    [w] = pw.close_due()
    assert (w.window_start, w.window_end, w.count) == (0, 1000, 1)


def test_late_reading_counted_never_mixed_into_closed_window() -> None:
    _pw, out, late = run(
        [("d", "m", 100, 1.0), ("d", "m", 2600, 5.0), ("d", "m", 200, 99.0)],
        sizes=(1000,),
        lateness=500,
    )
    assert late == 1
    [first] = [w for w in out if w.window_start == 0]
    assert first.count == 1
    assert first.max == 1.0


def test_late_for_small_window_on_time_for_large() -> None:
    pw, _out, late = run(
        [("d", "m", 100, 1.0), ("d", "m", 2600, 5.0), ("d", "m", 200, 7.0)],
        sizes=(1000, 10_000),
        lateness=500,
    )
    assert late == 1
    big = [w for w in flush(pw) if w.size_ms == 10_000]
    assert big[0].count == 3


def test_statistics_match_reference_with_population_stddev() -> None:
    rng = random.Random(7)
    readings = [("d", "m", ts, rng.uniform(-50, 150)) for ts in range(0, 5000, 7)]
    pw, out, _ = run(readings, sizes=(1000,), lateness=0)
    out += flush(pw)
    assert_close(as_dict(out), reference(readings, (1000,), 0))


def test_safe_offset_is_first_reading_of_oldest_open_window() -> None:
    pw = PartitionWindows((1000,), 0)
    for offset, ts in enumerate([100, 1100, 1200, 2100]):
        pw.add("d", "m", ts, 1.0, offset)
        pw.observe(ts)
        pw.close_due()
    # windows [0,1000) and [1000,2000) closed; [2000,3000) open from offset 3
    assert pw.safe_offset(next_offset=4) == 3
    flush(pw)
    assert pw.safe_offset(next_offset=4) == 4


def test_safe_offset_is_the_oldest_first_reading_over_every_deadline() -> None:
    # An out-of-order reading opens an older window (earlier deadline) after a newer one, and
    # a second series' window opens in between: the safe offset is the smallest first offset
    # of all open windows, whichever deadline they close at.
    pw = PartitionWindows((1000,), 500)
    for offset, (device, ts) in enumerate([("a", 1100), ("b", 1200), ("a", 900), ("b", 1300)]):
        pw.add(device, "m", ts, 1.0, offset)
        pw.observe(ts)
    assert pw.safe_offset(next_offset=4) == 0  # [1000,2000) of a, opened by offset 0
    pw.add("a", "m", 1600, 1.0, 4)
    pw.observe(1600)
    [closed] = pw.close_due()  # [0,1000) of a (deadline 1500), opened by offset 2
    assert (closed.device_id, closed.window_start) == ("a", 0)
    assert pw.safe_offset(next_offset=5) == 0
    pw.add("a", "m", 2600, 1.0, 5)
    pw.observe(2600)
    assert {(w.device_id, w.window_start) for w in pw.close_due()} == {("a", 1000), ("b", 1000)}
    assert pw.safe_offset(next_offset=6) == 5


readings_strategy = st.lists(
    st.tuples(
        st.sampled_from(["d1", "d2", "d3"]),
        st.sampled_from(["temp", "rpm"]),
        st.integers(min_value=0, max_value=20_000),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    ),
    max_size=150,
)


@settings(max_examples=150, deadline=None)
@given(readings_strategy)
def test_matches_independent_computation(readings: list[Reading]) -> None:
    pw, out, _ = run(readings)
    out += flush(pw)
    assert_close(as_dict(out), reference(readings, (1000, 5000), 500))


@settings(max_examples=150, deadline=None)
@given(readings_strategy, st.data())
def test_replay_from_committed_offset_reemits_identical_windows(
    readings: list[Reading], data: st.DataObject
) -> None:
    """Crash anywhere: replaying from the committed offset with the committed watermark yields
    every window exactly once after dedupe by id, each identical to the uninterrupted run."""
    crash_at = data.draw(st.integers(min_value=0, max_value=len(readings)))
    full_pw, full, _ = run(readings)
    full += flush(full_pw)

    pw, before, _ = run(readings[:crash_at])
    committed = pw.safe_offset(crash_at)
    replay_pw, after, _ = run(readings[committed:], start_offset=committed, wm=pw.watermark)
    after += flush(replay_pw)

    seen: dict[Key, Stats] = {}
    for w in before + after:
        key = (w.device_id, w.metric, w.size_ms, w.window_start)
        value = as_dict([w])[key]
        if key in seen:
            assert seen[key] == value  # a duplicate is the same event
        seen[key] = value
    assert seen == as_dict(full)
