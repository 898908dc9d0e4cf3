"""Sealing ended windows ahead of their close changes nothing: with seal_ended() called at
random points (readings still reaching sealed windows within the lateness), paced or not,
close_due_as() gives exactly the windows, in the same order, that it gives without sealing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, configs, records

from services.telemetry.domain.windows import ClosedWindow, PartitionWindows

made: list[ClosedWindow] = []


def make(w: ClosedWindow) -> ClosedWindow:
    made.append(w)
    return w


@settings(max_examples=300, deadline=None)
@given(
    records,
    configs,
    st.lists(st.integers(0, 5), min_size=1, max_size=200),
    st.floats(0, 1),
    st.none() | st.floats(0, 1),
)
def test_sealing_ahead_gives_the_same_windows(
    recs: list[tuple[str, list[R]]],
    config: tuple[tuple[int, ...], int],
    seal_limits: list[int],
    settle_share: float,
    finish_share: float | None,
) -> None:
    sizes, lateness = config
    settle = int(lateness * settle_share)
    finish = None if finish_share is None else int(lateness * finish_share)
    plain, sealed = PartitionWindows(sizes, lateness), PartitionWindows(sizes, lateness)
    want: list[ClosedWindow] = []
    got: list[ClosedWindow] = []
    made.clear()
    for i, (device, readings) in enumerate(recs):
        plain.add_records([(device, readings, i)], BAD)
        sealed.add_records([(device, readings, i)], BAD)
        sealed.seal_ended(make, seal_limits[i % len(seal_limits)], settle, finish)
        want += plain.close_due_as(make)
        got += sealed.close_due_as(make)
    for pw in (plain, sealed):
        pw.advance_to(10**9)
    want += plain.close_due_as(make)
    got += sealed.close_due_as(make)
    assert got == want
    assert sealed.open == plain.open == {}


def _ended() -> tuple[PartitionWindows, ClosedWindow]:
    """Window [0, 1000) of ("d", "t") ended (watermark 1100) but open (lateness 500), sealed."""
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0), R("t", 200, 2.0)], 0)], BAD)
    pw.add_records([("d", [R("t", 1100, 5.0)], 1)], BAD)
    made.clear()
    assert pw.seal_ended(make, 10) == 1
    assert pw.seal_ended(make, 10) == 0  # each window once
    [seal] = made
    return pw, seal


def test_an_unchanged_window_closes_with_its_seal() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 1600, 6.0)], 2)], BAD)  # closes [0, 1000)
    [w] = pw.close_due_as(make)
    assert w is seal
    assert len(made) == 1  # not made again


def test_a_reading_after_the_seal_voids_it() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 300, 3.0)], 2)], BAD)  # within the lateness
    pw.add_records([("d", [R("t", 1600, 6.0)], 3)], BAD)  # closes [0, 1000)
    [w] = pw.close_due_as(make)
    assert (w.count, seal.count) == (3, 2)


def test_windows_are_left_to_settle_before_they_are_sealed() -> None:
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0)], 0), ("d", [R("t", 1200, 5.0)], 1)], BAD)
    assert pw.seal_ended(make, 10, settle_ms=300) == 0  # ended at 1000, watermark 1200
    pw.add_records([("d", [R("t", 1300, 5.0)], 2)], BAD)
    assert pw.seal_ended(make, 10, settle_ms=300) == 1


def test_paced_sealing_spreads_a_boundary_over_the_lateness() -> None:
    """Ten windows [0, 1000) with lateness 1000 settle at 1000 and must be sealed by 1800
    (200 before their deadline, 2000): by each watermark, the share of the way there."""
    pw = PartitionWindows((1000,), 1000)
    pw.add_records([(f"d{i}", [R("t", 100, 1.0)], i) for i in range(10)], BAD)
    made.clear()
    sealed = []
    for watermark in (1000, 1399, 1400, 1799, 1800, 1900):
        pw.add_records([("clock", [R("t", watermark, 0.0)], 10)], BAD)
        pw.seal_ended(make, 100, finish_ms=200)
        pw.seal_ended(make, 100, finish_ms=200)  # nothing more at the same watermark
        sealed.append(len(made))
    # ceil(10 * (watermark - 1000 + 1) / 800)
    assert sealed == [1, 5, 6, 10, 10, 10]


def test_sealed_ahead_counts_the_seals_still_waiting_for_their_deadline() -> None:
    pw = PartitionWindows((1000,), 1000)
    pw.add_records([(f"d{i}", [R("t", 100, 1.0)], i) for i in range(5)], BAD)
    pw.add_records([("clock", [R("t", 1500, 0.0)], 5)], BAD)
    assert pw.sealed_ahead == 0
    assert pw.seal_ended(make, 3) == 3
    assert pw.sealed_ahead == 3
    assert pw.seal_ended(make, 10) == 2
    assert pw.sealed_ahead == 5
    pw.add_records([("clock", [R("t", 2000, 0.0)], 6)], BAD)  # the deadline: due, not ahead
    assert pw.sealed_ahead == 0
    assert len(pw.close_due()) == 5
    assert pw.sealed_ahead == 0


def test_seals_of_another_make_are_not_used() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 1600, 6.0)], 2)], BAD)
    [w] = pw.close_due()
    assert w == seal
    assert w is not seal
