"""A close in two steps: ``emit`` makes (or takes the seals of) the due windows' records,
``retire`` later takes them off. The aggregator emits a whole boundary before retiring any of
it, and readings keep coming in between.

However the two steps are spread over a stream (emits of any size, retirements long after,
sealing, late and out-of-order readings), every window is emitted exactly once, with the same
content and in the same order as closing at once (``close``) gives; late counts are the
same; a window stays open, holding back the safe offset, until it is retired; and a crash
anywhere replays the same windows.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, Step, assert_replayed, configs, records, same, stepped

from services.telemetry.windows.model import ClosedWindow, WindowKey
from services.telemetry.windows.partition import PartitionWindows

SIZES = (1000, 5000)
steps_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 400),
        st.one_of(st.just(0), st.just(0), st.integers(0, 6000)),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.integers(0, 9),
    ),
    max_size=300,
)


def drive(
    pw: PartitionWindows,
    steps: list[Step],
    *,
    split: bool,
    start_offset: int = 0,
    stop_at: int | None = None,
) -> tuple[list[ClosedWindow], list[object], tuple[int, int]]:
    """A reading per record, sometimes sealing; closes at once (``split`` False) or in the two
    steps, spread out by each step's ``then``. Returns the windows emitted, the other outcomes
    (late masks, commits) and the last safe commit (offset, watermark)."""
    emitted: list[ClosedWindow] = []
    seen: list[object] = []
    commit = (start_offset, pw.watermark)
    for offset, device, reading, then in stepped(steps, start_offset, stop_at):
        seen.append(pw.add_records([(device, [reading], offset)], BAD))
        if then == 0:
            pw.seal(same, 3)
        if not split:
            emitted += pw.close(same)
        elif then <= 2:
            emitted += pw.emit(same, then + 1)  # a few, none retired
        elif then <= 5:
            emitted += pw.emit(same)
            pw.retire(then - 3)  # all emitted, some retired
        elif then <= 7:
            pw.retire()  # no new emits
        if not pw.has_closed:
            commit = (pw.safe_offset(offset + 1), pw.watermark)
            seen.append(commit)
    return emitted, seen, commit


def _finish(pw: PartitionWindows) -> list[ClosedWindow]:
    pw.advance_to(2**62)
    out = pw.emit(same)
    pw.retire()
    return out


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from([0, 500, 3000]))
def test_two_steps_emit_what_one_close_does(steps: list[Step], lateness: int) -> None:
    split, whole = PartitionWindows(SIZES, lateness), PartitionWindows(SIZES, lateness)
    got, got_seen, _ = drive(split, steps, split=True)
    want, want_seen, _ = drive(whole, steps, split=False)
    # The same late masks; commits only where neither holds windows back.
    assert [s for s in got_seen if isinstance(s, tuple) and len(s) == 3] == [
        s for s in want_seen if isinstance(s, tuple) and len(s) == 3
    ]
    got += _finish(split)
    want += _finish(whole)
    assert got == want
    assert len({(w.device_id, w.metric, w.size_ms, w.window_start) for w in got}) == len(got)
    for pw in (split, whole):
        assert (pw.open_count, pw.open, pw.series_count, pw.has_closed) == (0, {}, 0, False)


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from([0, 500, 3000]), st.data())
def test_a_crash_between_the_steps_replays_the_same_windows(
    steps: list[Step], lateness: int, data: st.DataObject
) -> None:
    crash_at = data.draw(st.integers(0, len(steps)))
    full_pw = PartitionWindows(SIZES, lateness)
    want, _, _ = drive(full_pw, steps, split=False)
    want += _finish(full_pw)

    crashed = PartitionWindows(SIZES, lateness)
    before, _, (offset, watermark) = drive(crashed, steps, split=True, stop_at=crash_at)
    replay = PartitionWindows(SIZES, lateness)
    replay.advance_to(watermark)
    after, _, _ = drive(replay, steps, split=True, start_offset=offset)
    got = before + after + _finish(replay)
    assert_replayed(got, want)


@settings(max_examples=200, deadline=None)
@given(records, configs, st.integers(1, 5))
def test_emitted_windows_stay_open_until_retired(
    recs: list[tuple[str, list[R]]], config: tuple[tuple[int, ...], int], limit: int
) -> None:
    pw = PartitionWindows(*config)
    unretired = 0
    for i, (device, readings) in enumerate(recs):
        pw.add_records([(device, readings, i)], BAD)
        open_before, safe_before = pw.open_count, pw.safe_offset(i + 1)
        out = pw.emit(same, limit)
        unretired += len(out)
        assert len(out) <= limit
        # Emitting changes nothing of the open windows or the commit point.
        assert (pw.open_count, pw.safe_offset(i + 1)) == (open_before, safe_before)
        assert pw.emit(same, 0) == []
        assert pw.has_closed or not unretired
        if pw.has_due:
            assert pw.has_closed
        if i % 3 == 0:
            # Retiring takes off exactly what was emitted (this time and before).
            assert pw.retire() == unretired
            assert pw.open_count == open_before - unretired
            unretired = 0
    pw.advance_to(2**62)
    while pw.has_due:
        out = pw.emit(same, limit)
        assert 0 < len(out) <= limit
        unretired += len(out)
    assert pw.retire() == unretired
    assert (pw.open_count, pw.series_count, pw.open, pw.has_closed) == (0, 0, {}, False)


def test_a_boundary_is_emitted_before_any_window_is_retired() -> None:
    pw = PartitionWindows(SIZES, 500)
    for offset, device in enumerate(["a", "b", "c"]):
        pw.add(device, "t", 100, 1.0, offset)
    pw.advance_to(1500)
    assert pw.has_due
    assert pw.has_closed
    first = pw.emit(same, 2)
    assert [w.device_id for w in first] == ["a", "b"]
    assert pw.open_count == 6
    assert pw.safe_offset(3) == 0
    # A retirement takes only what was emitted.
    assert pw.retire() == 2
    assert pw.safe_offset(3) == 0  # a's and b's 5 s windows and c's 1 s window are open
    assert [w.device_id for w in pw.emit(same)] == ["c"]
    assert not pw.has_due
    assert pw.has_closed
    assert pw.retire() == 1
    assert not pw.has_closed
    assert pw.safe_offset(3) == 0  # the 5 s windows
    assert pw.emit(same) == []
    assert pw.retire() == 0


def test_every_open_window_emitted_is_retired_at_once() -> None:
    pw = PartitionWindows(SIZES, 500)
    for offset, device in enumerate(["a", "b", "c"]):
        pw.add(device, "t", 100, 1.0, offset)
        pw.add(device, "t", 1200, 2.0, offset + 3)
    pw.observe(1200)
    pw.advance_to(6000)  # past every deadline: the 1 s windows' and the 5 s windows'
    out = pw.emit(same)
    assert len(out) == pw.open_count == 9
    # One call, whatever the limit: no window of the partition is left open.
    assert pw.retire(1) == 9
    assert (pw.open_count, pw.series_count, pw.open, pw.has_closed, pw.has_due) == (
        0,
        0,
        {},
        False,
        False,
    )
    assert pw.safe_offset(6) == 6
    # The partition goes on as a fresh one would.
    fresh = PartitionWindows(SIZES, 500)
    fresh.advance_to(6000)
    for windows in (pw, fresh):
        windows.add("a", "t", 6100, 3.0, 6)
        windows.advance_to(20_000)
    assert pw.close(same) == fresh.close(same) != []


def test_a_partly_emitted_partition_is_not_retired_at_once() -> None:
    pw = PartitionWindows(SIZES, 500)
    for offset, device in enumerate(["a", "b", "c"]):
        pw.add(device, "t", 100, 1.0, offset)
    pw.advance_to(6000)
    assert len(pw.emit(same, 4)) == 4
    assert pw.retire(1) == 1  # windows still to emit: the limit holds
    assert pw.open_count == 5


Failure = tuple[WindowKey, int]


def _failing_on_b(window: ClosedWindow) -> ClosedWindow:
    if window.device_id == "b":
        raise ValueError("cannot encode")
    return window


@pytest.mark.parametrize(("watermark", "emitted_first"), [(2800, 0), (2800, 1), (6000, 2)])
def test_emitting_and_retiring_all_at_once_is_emit_then_retire(
    watermark: int, emitted_first: int
) -> None:
    """``emit_and_retire_all`` (a device's windows, written out) gives the records, failures,
    retired windows and safe offset of ``emit`` and then ``retire``: with windows left open or
    none, after an emit that a limit cut short, and with a window ``make`` fails for."""
    runs: list[tuple[object, ...]] = []
    for at_once in (False, True):
        pw = PartitionWindows(SIZES, 500)
        for offset, device in enumerate(["a", "b", "c"]):
            pw.add(device, "t", 100, 1.0, offset)
            pw.add(device, "t", 1200, 2.0, offset + 3)
            pw.add(device, "t", 2100, 3.0, offset + 6)
        pw.advance_to(watermark)
        failures: list[Failure] = []

        def failed(
            window: WindowKey, offset: int, exc: Exception, into: list[Failure] = failures
        ) -> None:
            into.append((window, offset))

        out = pw.emit(_failing_on_b, emitted_first, (), failed)
        if at_once:
            made, retired = pw.emit_and_retire_all(_failing_on_b, failed)
        else:
            made, retired = pw.emit(_failing_on_b, None, (), failed), pw.retire()
        out += made
        state = (out, failures, retired, pw.open_count, pw.series_count, pw.safe_offset(9))
        # And the partition goes on the same.
        pw.add("a", "t", 7000, 4.0, 9)
        pw.advance_to(20_000)
        runs.append((*state, pw.close(same)))
    assert runs[0] == runs[1]
    assert runs[0][1]  # b's windows failed
