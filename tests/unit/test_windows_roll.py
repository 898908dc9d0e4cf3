"""The written-out roll and creation (``PartitionWindows._roll``, ``_create``) and closed
windows left on their series.

With one smallest and one derived size (the default 10 s and 60 s), a series' first reading of
its next smallest window takes ``_roll`` and a new series' first reading ``_create``; a closed
window that is not its series' current one stays on the series, marked closed, until the series
next touches its older windows. Neither may change a single window: on mostly ordered streams
(where the roll is the common case) with late and out-of-order readings, sealing and closes in
chunks, the windows, late counts, safe offsets and open windows are those of the general path,
bit for bit; a crash anywhere replays the same windows; and no series outlives its last window.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, Step, assert_replayed, configs, records, same, stepped

from services.telemetry.windows.partition import PartitionWindows

SIZES = (1000, 5000)
steps_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 400),
        st.one_of(st.just(0), st.just(0), st.just(0), st.integers(0, 6000)),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.integers(0, 9),
    ),
    max_size=300,
)


def _plain(lateness: int) -> PartitionWindows:
    """The general path only (as for any other set of sizes)."""
    pw = PartitionWindows(SIZES, lateness)
    # The switch this test is about. Private on purpose: the written-out roll is an inner
    # optimisation of PartitionWindows with no public switch, and this module holds it to the
    # general path.
    pw._roll_sizes = None
    return pw


def _open(pw: PartitionWindows) -> dict[tuple[str, str, int, int], tuple[float, ...]]:
    return {
        k: (w.first_offset, w.count, w.min, w.max, w.mean, w.m2, w.last_ts, w.last)
        for k, w in pw.open.items()
    }


def drive(
    pw: PartitionWindows,
    steps: list[Step],
    *,
    start_offset: int = 0,
    stop_at: int | None = None,
) -> tuple[list[object], tuple[int, int]]:
    """As the aggregator drives the windows: a reading per record, sometimes sealing, closes in
    chunks; every outcome recorded. Returns them and the last safe commit (offset, watermark)."""
    seen: list[object] = []
    commit = (start_offset, pw.watermark)
    for offset, device, reading, then in stepped(steps, start_offset, stop_at):
        seen.append(pw.add_records([(device, [reading], offset)], BAD))
        if then == 0:
            pw.seal(same, 3)
        seen.append(pw.close(same, 1 if then < 3 else None))
        if not pw.has_closed:
            commit = (pw.safe_offset(offset + 1), pw.watermark)
            seen.append(commit)
    return seen, commit


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from([0, 500, 3000]))
def test_the_roll_changes_nothing(steps: list[Step], lateness: int) -> None:
    fast, plain = PartitionWindows(SIZES, lateness), _plain(lateness)
    assert fast._roll_sizes == SIZES  # the written-out path is on (see _plain)
    got, _ = drive(fast, steps)
    want, _ = drive(plain, steps)
    assert got == want
    assert _open(fast) == _open(plain)
    assert fast.open_count == plain.open_count == len(fast.open)
    assert fast.series_count == plain.series_count
    for pw in (fast, plain):
        pw.advance_to(2**62)
    assert fast.close(same) == plain.close(same)
    assert fast.series_count == plain.series_count == 0


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.sampled_from([0, 500, 3000]), st.data())
def test_a_crash_anywhere_replays_thesame_windows(
    steps: list[Step], lateness: int, data: st.DataObject
) -> None:
    crash_at = data.draw(st.integers(0, len(steps)))
    full_pw = PartitionWindows(SIZES, lateness)
    full, _ = drive(full_pw, steps)
    full_pw.advance_to(2**62)
    want = [w for out in full if isinstance(out, list) for w in out]
    want += full_pw.close(same)

    crashed = PartitionWindows(SIZES, lateness)
    before, (offset, watermark) = drive(crashed, steps, stop_at=crash_at)
    replay = PartitionWindows(SIZES, lateness)
    replay.advance_to(watermark)
    after, _ = drive(replay, steps, start_offset=offset)
    replay.advance_to(2**62)
    got = [w for out in before + after if isinstance(out, list) for w in out]
    got += replay.close(same)
    assert_replayed(got, want)
    assert len(want) == len(set(want))


@settings(max_examples=300, deadline=None)
@given(records, configs)
def test_no_series_outlives_its_windows(
    recs: list[tuple[str, list[R]]], config: tuple[tuple[int, ...], int]
) -> None:
    pw = PartitionWindows(*config)
    for i, (device, readings) in enumerate(recs):
        pw.add_records([(device, readings, i)], BAD)
        pw.close(same, 2)
        # A series is kept while it has an open window, and only then.
        assert pw.series_count == len({(d, m) for d, m, _, _ in pw.open})
    pw.advance_to(2**62)
    pw.close(same)
    assert (pw.series_count, pw.open_count, pw.open) == (0, 0, {})


def test_a_steady_series_rolls_on_the_written_out_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Counted on the private methods themselves: which path took a reading shows nowhere else
    # (both paths make the same windows, the first test of this module holds them to it).
    calls: dict[str, list[bool]] = {"_roll": [], "_create": []}
    for name, calls_of in calls.items():
        method = getattr(PartitionWindows, name)

        def counted(
            self: PartitionWindows, *args: object, _m: object = method, _c: list[bool] = calls_of
        ) -> bool:
            took: bool = _m(self, *args)  # type: ignore[operator]
            _c.append(took)
            return took

        monkeypatch.setattr(PartitionWindows, name, counted)
    pw = PartitionWindows(SIZES, 500)
    for offset, ts in enumerate(range(0, 20_000, 100)):
        pw.add_records([("d", [R("t", ts, float(ts))], offset)], BAD)
        pw.close(same)
    assert calls["_create"] == [True]
    # Every new 1 s window but the first, those opening a new 5 s window too.
    assert calls["_roll"].count(True) == 20 - 1
    assert pw.series_count == 1
    assert len(pw.open) == 2
