"""Window arithmetic, lateness and the replay invariant of the telemetry domain, with sliced
(derived) windows: a size that is a multiple of the smallest is built from its slices."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import same

from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows

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
        out.extend(pw.close())
    return pw, out, late


def flush(pw: PartitionWindows) -> list[ClosedWindow]:
    pw.advance_to(2**62)
    return pw.close()


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


def deduped(windows: list[ClosedWindow]) -> dict[Key, Stats]:
    """Every window once after dedupe by id, checking that each duplicate is the same event."""
    seen: dict[Key, Stats] = {}
    for w in windows:
        key = (w.device_id, w.metric, w.size_ms, w.window_start)
        value = as_dict([w])[key]
        if key in seen:
            assert seen[key] == value  # a duplicate is the same event
        seen[key] = value
    return seen


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
    assert pw.close() == []
    pw.observe(1500)
    [w] = pw.close()
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
        pw.close()
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
    [closed] = pw.close()  # [0,1000) of a (deadline 1500), opened by offset 2
    assert (closed.device_id, closed.window_start) == ("a", 0)
    assert pw.safe_offset(next_offset=5) == 0
    pw.add("a", "m", 2600, 1.0, 5)
    pw.observe(2600)
    assert {(w.device_id, w.window_start) for w in pw.close()} == {("a", 1000), ("b", 1000)}
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

    assert deduped(before + after) == as_dict(full)


# Size sets: one derived size (5000 over 1000), a derived one beside a size that is not a
# multiple (1500) and a second multiple (5000, kept per reading), sizes in any order, and one
# size alone.
SIZE_SETS = [(1000, 5000), (1000, 3000, 5000, 1500), (2000, 1000, 4000), (1500, 1000), (1000,)]
steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["d1", "d2", "d3"]),
        st.sampled_from(["temp", "rpm"]),
        st.integers(min_value=0, max_value=20_000),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        st.integers(min_value=0, max_value=9),  # what the loop does after the reading
    ),
    max_size=250,
)
Step = tuple[str, str, int, float, int]


def run_loop(
    steps: list[Step],
    sizes: tuple[int, ...],
    lateness: int,
    start_offset: int = 0,
    wm: int = -1,
    stop_at: int | None = None,
) -> tuple[PartitionWindows, list[ClosedWindow], tuple[int, int]]:
    """As the aggregator drives the windows: after each reading, sometimes seal ended windows
    ahead of their close (step 0), close due windows in chunks of one (steps 0-3) or all, and
    commit (safe offset, watermark) only when no closed window waits for its emit."""
    pw = PartitionWindows(sizes, lateness)
    pw.advance_to(wm)
    out: list[ClosedWindow] = []
    commit = (start_offset, wm)
    for offset, (dev, met, ts, val, step) in enumerate(steps, start=start_offset):
        if offset == stop_at:
            break
        pw.add(dev, met, ts, val, offset)
        pw.observe(ts)
        if step == 0:
            pw.seal(same, 3)
        out.extend(pw.close(limit=1 if step < 4 else None))
        if not pw.has_closed:
            commit = (pw.safe_offset(offset + 1), pw.watermark)
    return pw, out, commit


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from(SIZE_SETS), st.sampled_from([0, 500, 3000]))
def test_sliced_windows_match_independent_computation(
    steps: list[Step], sizes: tuple[int, ...], lateness: int
) -> None:
    pw, out, _ = run_loop(steps, sizes, lateness)
    out += flush(pw)
    readings = [(dev, met, ts, val) for dev, met, ts, val, _ in steps]
    assert_close(as_dict(out), reference(readings, sizes, lateness))


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from(SIZE_SETS), st.sampled_from([0, 500, 3000]), st.data())
def test_crash_anywhere_replays_identical_windows_with_partial_closes_and_seals(
    steps: list[Step], sizes: tuple[int, ...], lateness: int, data: st.DataObject
) -> None:
    """A crash at any point, after closes spread over several steps and windows sealed ahead:
    replaying from the last commit yields every window exactly once after dedupe by id, bit
    for bit the window of the uninterrupted run, derived sizes included (their merge points
    are the series' own readings, which the replay sees again in the same order)."""
    crash_at = data.draw(st.integers(min_value=0, max_value=len(steps)))
    full_pw, full, _ = run_loop(steps, sizes, lateness)
    full += flush(full_pw)
    _, before, (offset, wm) = run_loop(steps, sizes, lateness, stop_at=crash_at)
    replay_pw, after, _ = run_loop(steps[offset:], sizes, lateness, offset, wm)
    after += flush(replay_pw)
    assert deduped(before + after) == as_dict(full)


def test_a_lagging_series_builds_the_larger_window_from_readings_late_for_the_smaller() -> None:
    # "b" lags 1.2 s behind "a": its readings are late for their 1 s windows (lateness 0) but
    # on time for the 5 s window, which gets them all.
    steps = [("a", "m", 1200, 0.0), ("b", "m", 0, 1.0), ("b", "m", 10, 2.0), ("a", "m", 2300, 0.0)]
    steps += [("b", "m", 1100, 4.0), ("b", "m", 1100, 5.0)]
    pw, out, late = run(steps, sizes=(1000, 5000), lateness=0)
    out += flush(pw)
    assert late == 4  # b's four readings, each for its 1 s window
    [big] = [w for w in out if (w.device_id, w.size_ms) == ("b", 5000)]
    assert (big.count, big.min, big.max, big.last) == (4, 1.0, 5.0, 5.0)
    assert math.isclose(big.mean, 3.0)
    assert math.isclose(big.stddev, statistics.pstdev([1.0, 2.0, 4.0, 5.0]))
    assert not [w for w in out if (w.device_id, w.size_ms) == ("b", 1000)]


def test_a_quiet_series_gets_its_last_slice_at_the_close() -> None:
    # The slice [4000, 5000) is still accumulating when the 5 s window closes: no later
    # reading of the series came to complete it, so the close merges it; a seal made before
    # the close holds it too.
    pw = PartitionWindows((1000, 5000), 500)
    for offset, ts in enumerate([100, 1100, 4100, 4200]):
        pw.add("d", "m", ts, float(ts), offset)
        pw.observe(ts)
    pw.advance_to(5000)
    assert [w.window_start for w in pw.close()] == [0, 1000]
    assert pw.seal(same, 10) == 2  # [4000, 5000) and [0, 5000), both ended
    pw.advance_to(5500)
    big = [w for w in pw.close(same) if w.size_ms == 5000]
    assert [(w.count, w.min, w.max, w.last) for w in big] == [(4, 100.0, 4200.0, 4200.0)]
    assert math.isclose(big[0].mean, statistics.fmean([100, 1100, 4100, 4200]))
