"""Window statistics hold for every finite reading: finite, within the aggregates contract
(``stddev >= 0``, ``min <= mean <= max``, ``min <= last <= max``) and close to the exact
values, for ±1.7e308, subnormals and mixed magnitudes, in 10 s windows, in the 60 s windows
merged from them, and after a replay.

Tolerance: ``1e-9 * M`` with ``M = max(|min|, |max|)``, plus ``2**-500`` absolute. Welford's
running mean and Chan's merge are off by a few ``n * 2**-53 * M`` at most (n the count, here
below 100), so 1e-9 leaves room for windows of millions of readings. Binary64 cannot square a
deviation below ``2**-537`` (it underflows), so the spread of values that small is not resolved:
no sensor reads within 1e-150 of zero unless it reads zero.
"""

from __future__ import annotations

import math
from fractions import Fraction

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, assert_replayed

from contracts.telemetry import WindowAggregate
from services.telemetry.emit import window_record
from services.telemetry.kafka.record_batch import decoded_record
from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows

T0 = 1_700_000_000_000
SIZES = (10_000, 60_000)
LATENESS = 5_000
MAX = 1.7976931348623157e308
REL, ABS = 1e-9, 2.0**-500

extreme = st.sampled_from(
    [MAX, -MAX, 1.7e308, -1.7e308, 1e308, 5e-324, -5e-324, 2.2250738585072014e-308, 0.0, -0.0]
)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    extreme,
    st.floats(-1e3, 1e3),
    st.integers(-(2**53), 2**53).map(float),
)
# (device, ms the clock moves on, value): in event-time order, so nothing is late and every
# reading is in its windows of both sizes.
streams = st.lists(st.tuples(st.sampled_from(["d0", "d1"]), st.integers(0, 4_000), values))


def _records(stream: list[tuple[str, int, float]]) -> list[tuple[str, list[R], int]]:
    out, ts = [], T0
    for offset, (device, step, value) in enumerate(stream):
        ts += step
        out.append((device, [R("m", ts, value)], offset))
    return out


def _run(records: list[tuple[str, list[R], int]], cut: int | None = None) -> list[ClosedWindow]:
    """Every window of ``records``, added one poll of 3 at a time; with ``cut``, a crash after
    that many records and a replay from the committed offset and watermark."""
    pw, out = PartitionWindows(SIZES, LATENESS), []
    stop = len(records) if cut is None else cut
    for i in range(0, stop, 3):
        pw.add_records(records[i : min(i + 3, stop)], BAD)
        out += pw.close()
    if cut is not None:
        safe = pw.safe_offset(cut)
        replayed = PartitionWindows(SIZES, LATENESS)
        replayed.advance_to(pw.watermark)
        pw = replayed
        for i in range(safe, len(records), 3):
            pw.add_records(records[i : i + 3], BAD)
            out += pw.close()
    pw.advance_to(2**62)
    return out + pw.close()


def _exact(records: list[tuple[str, list[R], int]], w: ClosedWindow) -> list[Fraction]:
    return [
        Fraction(r.value)
        for device, readings, _ in records
        for r in readings
        if device == w.device_id and w.window_start <= r.ts < w.window_end
    ]


def _check(w: ClosedWindow, exact: list[Fraction]) -> None:
    assert w.count == len(exact)
    assert all(math.isfinite(x) for x in (w.min, w.max, w.mean, w.stddev, w.last))
    assert w.min <= w.mean <= w.max
    assert w.min <= w.last <= w.max
    assert w.stddev >= 0
    assert (Fraction(w.min), Fraction(w.max)) == (min(exact), max(exact))
    mean = sum(exact, Fraction(0)) / len(exact)
    variance = sum(((x - mean) ** 2 for x in exact), Fraction(0)) / len(exact)
    scale: Fraction = max(abs(Fraction(w.min)), abs(Fraction(w.max)))
    if scale == 0:
        assert (w.mean, w.stddev) == (0.0, 0.0)
        return
    tolerance = REL + float(Fraction(ABS) / scale)  # relative to scale
    assert abs(Fraction(w.mean) - mean) / scale <= tolerance, (w, float(mean))
    stddev = math.sqrt(float(variance / scale**2))  # at most 1: no overflow
    assert abs(float(Fraction(w.stddev) / scale) - stddev) <= tolerance, (w, stddev)


def _payload(w: ClosedWindow) -> WindowAggregate:
    """The window as a consumer reads it: its emitted record's value, against the contract."""
    _, value, _ = decoded_record(window_record(w).record)
    assert value is not None
    return WindowAggregate.model_validate_json(value)


@settings(max_examples=400, deadline=None)
@given(streams)
def test_statistics_are_exact_to_the_tolerance_and_within_the_contract(
    stream: list[tuple[str, int, float]],
) -> None:
    records = _records(stream)
    for w in _run(records):
        _check(w, _exact(records, w))
        got = _payload(w)
        assert (got.mean, got.stddev, got.min, got.max) == (w.mean, w.stddev, w.min, w.max)


@settings(max_examples=200, deadline=None)
@given(streams, st.integers(0, 60))
def test_a_replay_rebuilds_the_same_windows_bit_for_bit(
    stream: list[tuple[str, int, float]], cut: int
) -> None:
    records = _records(stream)
    assert_replayed(_run(records, min(cut, len(records))), _run(records))


def test_the_issue_s_readings_give_finite_windows_that_validate() -> None:
    """±1.7e308 in one window (the deviation overflowed and stddev crashed the close), 1e308
    alone, and 1e308 with 0 (its stddev overflowed and was published as ``null``)."""
    records = [
        ("d0", [R("m", T0 + 1, 1.7e308), R("m", T0 + 2, -1.7e308)], 0),
        ("d1", [R("m", T0 + 1, 1e308)], 1),
        ("d2", [R("m", T0 + 1, MAX), R("m", T0 + 2, MAX), R("m", T0 + 3, -MAX)], 2),
        ("d3", [R("m", T0 + 1, 5e-324), R("m", T0 + 2, 1.0), R("m", T0 + 3, 1e300)], 3),
        ("d5", [R("m", T0 + 1, 1e308), R("m", T0 + 2, 0.0)], 4),
        ("d4", [R("m", T0 + 1, 5e-324), R("m", T0 + 15_000, -5e-324)], 5),
    ]
    windows = _run(records)
    assert len(windows) == 13  # d4's readings are in two 10 s windows, one 60 s window
    for w in windows:
        _check(w, _exact(records, w))
        _payload(w)
    by_key = {(w.device_id, w.size_ms): w for w in windows if w.device_id != "d4"}
    for size in SIZES:
        assert by_key[("d0", size)].stddev == 1.7e308
        assert by_key[("d0", size)].mean == 0.0
        assert by_key[("d1", size)].stddev == 0.0
        assert math.isclose(by_key[("d2", size)].mean, MAX / 3, rel_tol=1e-15)
        assert by_key[("d5", size)].stddev == 5e307


def test_a_huge_value_on_the_hot_path_scales_its_window_and_the_series_leaves_it() -> None:
    """A value beyond 2**448 that reaches an open window through the inlined update scales that
    window; the series' later readings take the general path and land in the same bits."""
    a = PartitionWindows(SIZES, LATENESS)
    b = PartitionWindows(SIZES, LATENESS)
    readings = [R("m", T0 + i, v) for i, v in enumerate([1.0, 2.0, 1e300, 3.0, -1e300, 4.0])]
    a.add_records([("d", readings, 0)], BAD)  # one record: all but the first on the hot path
    for i, r in enumerate(readings):
        b.add_records([("d", [r], i)], BAD)
    [w] = [w for w in a.open.values() if w.size_index == 0]
    assert w.scaled
    a.advance_to(2**62)
    b.advance_to(2**62)
    assert a.close() == b.close()


def test_payload_encoding_of_extremes_round_trips() -> None:
    w = ClosedWindow("d", "m", T0, T0 + 10_000, 3, -MAX, MAX, 0.0, MAX, 5e-324)
    got = _payload(w)
    assert msgspec.structs.astuple(w)[4:] == (
        got.count,
        got.min,
        got.max,
        got.mean,
        got.stddev,
        got.last,
    )
