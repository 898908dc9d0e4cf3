"""Sealing ended windows ahead of their close changes nothing: with seal() called at
random points (readings still reaching sealed windows within the lateness), paced or not, its
records kept on the windows or given to a sink, the close gives exactly the windows, in the
same order, that it gives without sealing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, configs, records

from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows

made: list[ClosedWindow] = []


def make(w: ClosedWindow) -> ClosedWindow:
    made.append(w)
    return w


def _ended() -> tuple[PartitionWindows, ClosedWindow]:
    """Window [0, 1000) of ("d", "t") ended (watermark 1100) but open (lateness 500), sealed."""
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0), R("t", 200, 2.0)], 0)], BAD)
    pw.add_records([("d", [R("t", 1100, 5.0)], 1)], BAD)
    made.clear()
    assert pw.seal(make, 10) == 1
    assert pw.seal(make, 10) == 0  # each window once
    [seal] = made
    return pw, seal


def test_an_unchanged_window_closes_with_its_seal() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 1600, 6.0)], 2)], BAD)  # closes [0, 1000)
    [w] = pw.close(make)
    assert w is seal
    assert len(made) == 1  # not made again


def test_a_reading_after_the_seal_voids_it() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 300, 3.0)], 2)], BAD)  # within the lateness
    pw.add_records([("d", [R("t", 1600, 6.0)], 3)], BAD)  # closes [0, 1000)
    [w] = pw.close(make)
    assert (w.count, seal.count) == (3, 2)


def test_windows_are_sealed_from_their_seal_point_on() -> None:
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0)], 0), ("d", [R("t", 1200, 5.0)], 1)], BAD)
    assert pw.seal(make, 10, delay_ms=300) == 0  # ended at 1000, watermark 1200
    pw.add_records([("d", [R("t", 1300, 5.0)], 2)], BAD)
    assert pw.seal(make, 10, delay_ms=300) == 1


def test_paced_sealing_spreads_a_boundary_over_the_lateness() -> None:
    """Ten windows [0, 1000) with lateness 1000 reach their seal point at 1000 and must be
    sealed by 1800 (200 before their deadline, 2000): by each watermark, the share of the way
    there."""
    pw = PartitionWindows((1000,), 1000)
    pw.add_records([(f"d{i}", [R("t", 100, 1.0)], i) for i in range(10)], BAD)
    made.clear()
    sealed = []
    for watermark in (1000, 1399, 1400, 1799, 1800, 1900):
        pw.add_records([("clock", [R("t", watermark, 0.0)], 10)], BAD)
        pw.seal(make, 100, finish_ms=200)
        pw.seal(make, 100, finish_ms=200)  # nothing more at the same watermark
        sealed.append(len(made))
    # ceil(10 * (watermark - 1000 + 1) / 800)
    assert sealed == [1, 5, 6, 10, 10, 10]


def test_sealed_ahead_counts_the_seals_still_waiting_for_their_deadline() -> None:
    pw = PartitionWindows((1000,), 1000)
    pw.add_records([(f"d{i}", [R("t", 100, 1.0)], i) for i in range(5)], BAD)
    pw.add_records([("clock", [R("t", 1500, 0.0)], 5)], BAD)
    assert pw.sealed_ahead == 0
    assert pw.seal(make, 3) == 3
    assert pw.sealed_ahead == 3
    assert pw.seal(make, 10) == 2
    assert pw.sealed_ahead == 5
    pw.add_records([("clock", [R("t", 2000, 0.0)], 6)], BAD)  # the deadline: due, not ahead
    assert pw.sealed_ahead == 0
    assert len(pw.close()) == 5
    assert pw.sealed_ahead == 0


def test_seals_of_another_make_are_not_used() -> None:
    pw, seal = _ended()
    pw.add_records([("d", [R("t", 1600, 6.0)], 2)], BAD)
    [w] = pw.close()
    assert w == seal
    assert w is not seal


def _close_held(
    pw: PartitionWindows, held: dict[int, list[ClosedWindow]], limit: int | None
) -> list[ClosedWindow]:
    """Close as the aggregator does with seals given to a sink: deadlines whose seals are
    unchanged are taken whole (what the sink got), the rest made one by one, ``limit`` at a
    time, and retired."""
    out: list[ClosedWindow] = []
    while True:
        for deadline, whole in pw.emit_sealed(make, held):
            records = held.pop(deadline)
            if whole:
                out += records
        closed = pw.emit(make, limit, held)
        if not closed and not pw.has_due:
            break
        out += closed
    pw.retire()
    return out


@settings(max_examples=400, deadline=None)
@given(
    records,
    configs,
    st.lists(st.integers(0, 5), min_size=1, max_size=200),
    st.floats(0, 1),
    st.none() | st.floats(0, 1),
    st.none() | st.integers(1, 4),
    st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_sealing_ahead_gives_the_same_windows(
    recs: list[tuple[str, list[R]]],
    config: tuple[tuple[int, ...], int],
    seal_limits: list[int],
    delay_share: float,
    finish_share: float | None,
    limit: int | None,
    to_sink: list[bool],
) -> None:
    """Seals kept on their windows, or given to a sink and taken whole where
    :meth:`emit_sealed` allows it (made again one by one where a reading reached a sealed
    window, or where a deadline's seals went both ways): the same windows, in the same order,
    as closing without sealing."""
    sizes, lateness = config
    delay = int(lateness * delay_share)
    finish = None if finish_share is None else int(lateness * finish_share)
    plain, sealed = PartitionWindows(sizes, lateness), PartitionWindows(sizes, lateness)
    held: dict[int, list[ClosedWindow]] = {}

    def sink(deadline: int, made: list[ClosedWindow]) -> None:
        held.setdefault(deadline, []).extend(made)

    want: list[ClosedWindow] = []
    got: list[ClosedWindow] = []
    made.clear()
    for i, (device, readings) in enumerate(recs):
        plain.add_records([(device, readings, i)], BAD)
        sealed.add_records([(device, readings, i)], BAD)
        limit_i = seal_limits[i % len(seal_limits)]
        sealed.seal(make, limit_i, delay, finish, sink if to_sink[i % len(to_sink)] else None)
        want += plain.close(make)
        got += _close_held(sealed, held, limit)
    for pw in (plain, sealed):
        pw.advance_to(10**9)
    want += plain.close(make)
    got += _close_held(sealed, held, limit)
    assert got == want
    assert sealed.open == plain.open == {}
    assert held == {}


def _sunk() -> tuple[PartitionWindows, dict[int, list[ClosedWindow]]]:
    """Windows [0, 1000) of ("d", "t") and ("e", "t"), ended (watermark 1100) but open
    (lateness 500), sealed into a sink."""
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0)], 0), ("e", [R("t", 200, 2.0)], 1)], BAD)
    pw.add_records([("d", [R("t", 1100, 5.0)], 2)], BAD)
    held: dict[int, list[ClosedWindow]] = {}
    assert pw.seal(make, 10, sink=lambda d, made: held.setdefault(d, []).extend(made)) == 2
    assert list(held) == [1500]
    assert [w.count for w in held[1500]] == [1, 1]
    return pw, held


def test_unchanged_seals_given_to_a_sink_are_taken_whole() -> None:
    pw, held = _sunk()
    assert pw.emit_sealed(make, held) == []  # not due yet
    pw.add_records([("d", [R("t", 1600, 6.0)], 3)], BAD)  # closes [0, 1000)
    assert pw.emit_sealed(make, held) == [(1500, True)]
    assert pw.emit(make, None, held) == []  # taken: nothing left to make
    assert not pw.has_due
    assert pw.has_closed  # still open until retired
    assert pw.retire() == 2
    assert list(pw.open) == [("d", "t", 1000, 1000)]


def test_a_reading_after_a_seal_given_to_a_sink_makes_the_deadline_again() -> None:
    pw, held = _sunk()
    pw.add_records([("e", [R("t", 300, 3.0)], 3)], BAD)  # within the lateness
    pw.add_records([("d", [R("t", 1600, 6.0)], 4)], BAD)
    made.clear()
    assert pw.emit(make, None, held) == []  # held: the caller asks emit_sealed first
    assert pw.emit_sealed(make, held) == [(1500, False)]
    del held[1500]
    closed = pw.emit(make, None, held)
    assert [(w.device_id, w.count) for w in closed] == [("d", 1), ("e", 2)]
    assert made == closed  # both made again: their seals went to the sink


def test_windows_opened_after_a_deadline_was_sealed_follow_its_seals() -> None:
    pw, held = _sunk()
    pw.add_records([("f", [R("t", 900, 7.0)], 3)], BAD)  # a new window of the same deadline
    pw.add_records([("d", [R("t", 1600, 6.0)], 4)], BAD)
    assert pw.emit_sealed(make, held) == [(1500, True)]
    assert [w.device_id for w in held.pop(1500)] == ["d", "e"]
    assert [w.device_id for w in pw.emit(make, None, held)] == ["f"]


def test_a_held_deadline_waits_behind_an_earlier_one_being_emitted() -> None:
    """Deadlines close oldest first: a held deadline is taken only once every window of the
    deadlines before it has been emitted."""
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0)], 0), ("e", [R("t", 200, 1.0)], 1)], BAD)
    pw.add_records([("d", [R("t", 1100, 2.0)], 2), ("e", [R("t", 1200, 2.0)], 3)], BAD)
    pw.add_records([("d", [R("t", 2100, 5.0)], 4)], BAD)  # [1000, 2000) ended, [0, 1000) closed
    held: dict[int, list[ClosedWindow]] = {}
    pw.seal(make, 10, sink=lambda d, made: held.setdefault(d, []).extend(made))
    assert list(held) == [2500]
    pw.add_records([("d", [R("t", 2600, 5.0)], 5)], BAD)  # both deadlines due
    assert pw.emit_sealed(make, held) == []  # 1500 first, not held
    assert [w.window_start for w in pw.emit(make, 1, held)] == [0]
    assert pw.emit_sealed(make, held) == []  # 1500 half emitted
    assert [w.window_start for w in pw.emit(make, 5, held)] == [0]  # stops before 2500
    assert pw.emit_sealed(make, held) == [(2500, True)]
    assert pw.emit(make, None, held) == []


def test_a_deadline_sealed_both_ways_is_made_one_by_one() -> None:
    """Some seals kept on their windows, the rest given to the sink: the sink did not get the
    whole deadline, so it is not taken whole, and nothing is lost."""
    pw = PartitionWindows((1000,), 500)
    pw.add_records([("d", [R("t", 100, 1.0)], 0), ("e", [R("t", 200, 2.0)], 1)], BAD)
    pw.add_records([("d", [R("t", 1100, 5.0)], 2)], BAD)
    held: dict[int, list[ClosedWindow]] = {}
    assert pw.seal(make, 1) == 1  # ("d", "t") kept on its window
    assert pw.seal(make, 1, sink=lambda d, made: held.setdefault(d, []).extend(made)) == 1
    pw.add_records([("d", [R("t", 1600, 6.0)], 3)], BAD)
    assert pw.emit_sealed(make, held) == [(1500, False)]
    del held[1500]
    assert [w.device_id for w in pw.emit(make, None, held)] == ["d", "e"]
