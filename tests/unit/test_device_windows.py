"""Event time per device (``windows/devices.py``): live, backfilling and quiet devices
interleaved on one partition against an independent computation, and a crash after any commit
replayed from the committed offset and checkpoint to the same windows, bit for bit, and the
same late readings."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.telemetry.windows.clocks import NEVER, Checkpoint, ClockScan, shut_clock
from services.telemetry.windows.devices import DeviceWindows, LateRecord
from services.telemetry.windows.model import ClosedWindow, RecordFailedError

SIZES = (1000, 3000)
LATENESS = 200
SKIP = object()
Key = tuple[str, str, int, int]


@dataclass(frozen=True)
class R:
    metric: str
    ts: int
    value: float
    quality: object = None


Record = tuple[str, list[R], int]  # device, readings, Kafka timestamp (offset = index)
IDLE = 1000  # the idle clock of a device, when on


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Record], list[int], set[int]]:
    """Devices each sending in their own order (some from far back: a backlog), interleaved,
    stamped by a log clock with gaps (a device quiet in a busy partition) that sometimes goes
    back (producers' clocks differ); poll sizes; the offsets before which the partition went
    quiet (a shut)."""
    n_devices = draw(st.integers(1, 4))
    per_device: list[list[tuple[str, list[R]]]] = []
    for d in range(n_devices):
        ts = draw(st.integers(0, 20_000))
        records: list[tuple[str, list[R]]] = []
        for _ in range(draw(st.integers(1, 14))):
            readings = []
            for _ in range(draw(st.integers(1, 3))):
                ts = max(0, ts + draw(st.integers(-1500, 900)))
                metric = draw(st.sampled_from("ab"))
                value = float(draw(st.integers(-50, 50)))
                bad = draw(st.integers(0, 12)) == 0
                readings.append(R(metric, ts, value, SKIP if bad else None))
            records.append((f"d{d}", readings))
        per_device.append(records)
    order = draw(st.permutations([d for d, recs in enumerate(per_device) for _ in recs]))
    cursors = [0] * n_devices
    stream: list[Record] = []
    stamp = draw(st.integers(0, 20_000))
    for d in order:
        stamp = max(0, stamp + draw(st.sampled_from([-300, 0, 100, 400, 900, 1500, 4000])))
        stream.append((*per_device[d][cursors[d]], stamp))
        cursors[d] += 1
    polls = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    shuts = draw(st.sets(st.integers(1, len(stream) - 1), max_size=2)) if len(stream) > 1 else set()
    return stream, polls, shuts


def reference(
    stream: list[Record], shuts: set[int], horizon: int, idle: int = NEVER
) -> tuple[dict[Key, tuple[int, float, float, float]], set[tuple[int, int, int]]]:
    """Each device's clock by the rules written out: (count, min, max, last) of every window
    and the late readings as (offset, index, mask)."""
    clocks: dict[str, int] = {}
    tops: dict[str, tuple[int, int]] = {}  # greatest ts, and the log clock when it came
    wm = log_time = -1
    groups: dict[Key, list[tuple[int, float]]] = defaultdict(list)
    late: set[tuple[int, int, int]] = set()
    for offset, (device, readings, stamp) in enumerate(stream):
        if offset in shuts:
            for d, (top, _) in tops.items():
                shut = shut_clock(top, SIZES, LATENESS)
                clocks[d] = max(clocks[d], shut)
                wm = max(wm, shut)
        log_time = max(log_time, stamp)
        floor = wm - horizon if wm >= 0 else -1
        clock = max(clocks.get(device, -1), floor)
        top, seen = tops.get(device, (-1, -1))
        if top >= 0 and log_time - seen >= idle:
            # Quiet for the idle time: the clock followed the log clock, up to its newest
            # windows' deadline.
            clock = max(clock, min(top + log_time - seen, shut_clock(top, SIZES, LATENESS)))
        for i, r in enumerate(readings):
            if r.quality is SKIP:
                continue
            mask = 0
            for bit, size in enumerate(SIZES):
                start = r.ts - r.ts % size
                if start + size + LATENESS <= clock:
                    mask |= 1 << bit
                else:
                    groups[(device, r.metric, size, start)].append((r.ts, r.value))
            if mask:
                late.add((offset, i, mask))
            if r.ts > clock:
                clock = r.ts
                wm = max(wm, clock)
            if r.ts > top:
                top, seen = r.ts, log_time
        clocks[device] = clock
        if top >= 0:
            tops[device] = (top, seen)
    out = {}
    for key, vals in groups.items():
        values = [v for _, v in vals]
        last = max(enumerate(vals), key=lambda iv: (iv[1][0], iv[0]))[1][1]
        out[key] = (len(values), min(values), max(values), last)
    return out, late


@dataclass
class Run:
    windows: list[ClosedWindow]
    late: set[tuple[int, int, int]]
    # (safe offset, checkpoint) of each commit, and the windows emitted before it.
    commits: list[tuple[int, Checkpoint, int]]


def drive(
    dw: DeviceWindows,
    stream: list[Record],
    polls: list[int],
    shuts: set[int],
    begin: int = 0,
    route_from: int = 0,
    close_chunk: int = 0,
    singly: bool = False,
) -> Run:
    """Polls of ``stream`` from ``begin``, each followed by a full close and a commit; a shut
    at a poll boundary in ``shuts`` (a quiet partition), after the commit that pins it; the
    end flushed by a last shut. Late readings below ``route_from`` are not routed (they were
    before the commit a replay starts from). With ``close_chunk``, each poll's windows are
    closed as by an aggregator catching up: ``emit_and_retire`` in chunks of that many, after
    an emit of one window that a slice out of time left unretired. With ``singly``, each
    record is added in a call of its own."""
    out: list[ClosedWindow] = []
    late: set[tuple[int, int, int]] = set()
    commits: list[tuple[int, Checkpoint, int]] = []
    offset, i = begin, 0

    def shut(at: int) -> None:
        dw.shut(at, dw.watermark)
        out.extend(dw.emit(lambda w: w))
        dw.retire()

    if offset in shuts:
        # A replay from the commit a shut was pinned to: the shut comes first (the aggregator
        # repeats it before the record at that offset).
        shut(offset)
    while offset < len(stream):
        n = polls[i % len(polls)]
        i += 1
        end = min(len(stream), offset + n)
        if any(offset < s < end for s in shuts):
            end = min(s for s in shuts if offset < s < end)
        records = [(d, rs, o, t) for o, (d, rs, t) in enumerate(stream[offset:end], start=offset)]
        late_out: list[LateRecord] = []
        for chunk in [[r] for r in records] if singly else [records]:
            dw.add_records(chunk, SKIP, late_out)
        for _, o, readings in late_out:
            if o >= route_from:
                # By identity: two equal readings in one record are two readings.
                ids = {id(r): i for i, r in enumerate(stream[o][1])}
                late |= {(o, ids[id(r)], mask) for r, mask in readings}
        offset = end
        dw.sweep()  # as the aggregator does before it commits
        if close_chunk:
            out += dw.emit(lambda w: w, 1)
            while dw.has_closed:
                closed, _ = dw.emit_and_retire(lambda w: w, close_chunk, _never_fails)
                out += closed
        else:
            out += dw.emit(lambda w: w)
            dw.retire()
        assert not dw.has_closed
        if offset >= dw.replay_at:  # as the aggregator: no commit below the restored one
            commits.append((dw.safe_offset(offset), dw.checkpoint(offset), len(out)))
        if offset in shuts:
            shut(offset)
    shut(len(stream))
    assert dw.open_count == 0
    return Run(out, late, commits)


def _never_fails(window: Key, offset: int, exc: Exception) -> None:
    """A ``failed`` callback (with one, ``emit_and_retire`` takes its written-out path)."""
    raise AssertionError(f"{window} failed") from exc


def keyed(windows: list[ClosedWindow]) -> dict[Key, ClosedWindow]:
    out: dict[Key, ClosedWindow] = {}
    for w in windows:
        key = (w.device_id, w.metric, w.size_ms, w.window_start)
        assert out.setdefault(key, w) == w, f"{key} emitted twice with different content"
    return out


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from([10**9, 4000]), st.sampled_from([NEVER, IDLE]))
def test_device_windows_match_the_reference(
    case: tuple[list[Record], list[int], set[int]], horizon: int, idle: int
) -> None:
    stream, polls, shuts = case
    run = drive(DeviceWindows(SIZES, LATENESS, horizon, idle), stream, polls, shuts)
    expected, late = reference(stream, shuts, horizon, idle)
    got = keyed(run.windows)
    assert len(got) == len(run.windows)  # each window once, without a crash
    assert {k: (w.count, w.min, w.max, w.last) for k, w in got.items()} == expected
    for w in run.windows:
        assert w.min <= w.mean <= w.max
        assert math.isfinite(w.stddev)
    assert run.late == late


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from([10**9, 4000]), st.integers(1, 4), st.sampled_from([NEVER, IDLE]))
def test_emitting_and_retiring_each_devices_windows_at_once_changes_nothing(
    case: tuple[list[Record], list[int], set[int]], horizon: int, chunk: int, idle: int
) -> None:
    """``emit_and_retire`` (device by device, in chunks, as a consumer catching up does) gives
    the windows, in the same order, the late readings and the commits of ``emit`` and then
    ``retire``."""
    stream, polls, shuts = case
    apart = drive(DeviceWindows(SIZES, LATENESS, horizon, idle), stream, polls, shuts)
    fresh = DeviceWindows(SIZES, LATENESS, horizon, idle)
    at_once = drive(fresh, stream, polls, shuts, close_chunk=chunk)
    assert at_once.windows == apart.windows
    assert at_once.late == apart.late
    assert at_once.commits == apart.commits


class _OneCallAsAnother(DeviceWindows):
    """No sweep and no wake of quiet devices at the end of a call of ``add_records``: what
    the calls do is then the same whether a poll's records come in one call or one each."""

    def _sweep(self) -> None:
        pass

    def _wake_quiet(self) -> None:
        pass


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from([10**9, 4000]), st.sampled_from([NEVER, IDLE]))
def test_a_run_of_one_devices_records_is_added_as_each_record_alone(
    case: tuple[list[Record], list[int], set[int]], horizon: int, idle: int
) -> None:
    """Consecutive records of one device (a run) share its lookup and floor in
    ``add_records``; added one call each, every record is the first of its run: the same
    windows in the same order, the same late readings and the same commits."""
    stream, polls, shuts = case
    assume(any(a[0] == b[0] for a, b in pairwise(stream)))
    in_runs = drive(_OneCallAsAnother(SIZES, LATENESS, horizon, idle), stream, polls, shuts)
    alone = _OneCallAsAnother(SIZES, LATENESS, horizon, idle)
    assert drive(alone, stream, polls, shuts, singly=True) == in_runs


def test_a_record_failing_within_a_run_leaves_what_it_does_alone() -> None:
    """A record of a run that raises (its second reading) keeps the readings before it, as
    the same record added alone does: the same windows, clocks and checkpoint after."""
    bad = R("a", 2_400, "x")  # type: ignore[arg-type]  # float() raises
    stream: list[Record] = [
        ("d", [R("a", 1_500, 1.0)], 10),
        ("d", [R("b", 2_100, 2.0)], 20),
        ("d", [R("a", 2_300, 3.0), bad, R("a", 2_500, 4.0)], 30),
    ]
    records = [(d, rs, o, t) for o, (d, rs, t) in enumerate(stream)]
    in_runs, alone = (
        DeviceWindows(SIZES, LATENESS, 4000, IDLE),
        DeviceWindows(SIZES, LATENESS, 4000, IDLE),
    )
    with pytest.raises(RecordFailedError) as failed:
        in_runs.add_records(records, SKIP)
    assert failed.value.offset == 2
    alone.add_records(records[:1], SKIP)
    alone.add_records(records[1:2], SKIP)
    with pytest.raises(RecordFailedError):
        alone.add_records(records[2:], SKIP)
    assert in_runs.clock("d") == alone.clock("d") == 2_300
    assert in_runs.checkpoint(3) == alone.checkpoint(3)
    assert in_runs.open == alone.open
    assert (in_runs.watermark, in_runs.open_count) == (alone.watermark, alone.open_count)
    in_runs.shut(3, in_runs.watermark)
    alone.shut(3, alone.watermark)
    assert in_runs.emit(lambda w: w) == alone.emit(lambda w: w)


def test_a_backlog_behind_a_live_device_is_aggregated() -> None:
    """The issue's case: one device's history arrives behind another device's newer readings
    on the same partition, and none of it is late."""
    live = [("live", [R("m", 100_000 + i * 100, 1.0)], 100_000 + i * 100) for i in range(20)]
    backlog = [("gw", [R("m", 10_000 + i * 500, float(i))], 102_000 + i) for i in range(60)]
    stream = live + backlog
    run = drive(DeviceWindows(SIZES, LATENESS, 10**9, IDLE), stream, [5], set())
    assert run.late == set()
    gw = [w for w in run.windows if w.device_id == "gw" and w.size_ms == 1000]
    assert sum(w.count for w in gw) == 60


@settings(max_examples=300, deadline=None)
@given(streams(), st.sampled_from([10**9, 4000]), st.sampled_from([NEVER, IDLE]), st.data())
def test_a_crash_after_any_commit_replays_the_same_windows(
    case: tuple[list[Record], list[int], set[int]],
    horizon: int,
    idle: int,
    data: st.DataObject,
) -> None:
    stream, polls, shuts = case
    whole = drive(DeviceWindows(SIZES, LATENESS, horizon, idle), stream, polls, shuts)
    expected = keyed(whole.windows)
    crash = data.draw(st.integers(0, len(whole.commits) - 1))
    # What the crashed run had sent: the windows before the commit and maybe some after.
    emitted = whole.commits[crash][2]
    before = whole.windows[: emitted + data.draw(st.integers(0, len(whole.windows) - emitted))]
    polls_again = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    again, at = restart(stream, shuts, whole.commits[crash], horizon, idle, polls_again)
    assert keyed(before + again.windows) == expected
    assert {x for x in whole.late if x[0] < at} | again.late == whole.late


@settings(max_examples=200, deadline=None)
@given(streams(), st.sampled_from([10**9, 4000]), st.sampled_from([NEVER, IDLE]), st.data())
def test_a_crash_while_replaying_a_crash_replays_the_same_windows(
    case: tuple[list[Record], list[int], set[int]],
    horizon: int,
    idle: int,
    data: st.DataObject,
) -> None:
    """The replay's own commits (its checkpoints carry the clocks it restored) are as good as
    the first run's."""
    stream, polls, shuts = case
    whole = drive(DeviceWindows(SIZES, LATENESS, horizon, idle), stream, polls, shuts)
    first = whole.commits[data.draw(st.integers(0, len(whole.commits) - 1))]
    before = whole.windows[: first[2]]
    again, at = restart(stream, shuts, first, horizon, idle, [data.draw(st.integers(1, 6))])
    assume(again.commits)  # a replay from the end of the stream commits nothing
    second = again.commits[data.draw(st.integers(0, len(again.commits) - 1))]
    between = again.windows[: second[2]]
    third, at2 = restart(stream, shuts, second, horizon, idle, [data.draw(st.integers(1, 6))])
    assert keyed(before + between + third.windows) == keyed(whole.windows)
    routed = {x for x in whole.late if x[0] < at} | {x for x in again.late if x[0] < at2}
    assert routed | third.late == whole.late


def restart(
    stream: list[Record],
    shuts: set[int],
    commit: tuple[int, Checkpoint, int],
    horizon: int,
    idle: int,
    polls: list[int],
) -> tuple[Run, int]:
    """A new owner from ``commit``: the checkpoint through its text, the clocks read again
    from its scan offset, the replay from the safe offset; and the commit point."""
    safe, checkpoint, _ = commit
    restored = Checkpoint.decode(checkpoint.encode())
    assert restored == checkpoint
    scan = ClockScan(SIZES, LATENESS, checkpoint, idle)
    for offset in range(checkpoint.scan, checkpoint.at):
        device, readings, stamp = stream[offset]
        scan.add(device, readings, offset, SKIP, stamp)
    dw = DeviceWindows(SIZES, LATENESS, horizon, idle)
    dw.restore(checkpoint, scan.finish(), scan.tops)
    # A shut pinned to the commit (the aggregator commits right before one) is repeated there.
    at = checkpoint.at
    run = drive(dw, stream, polls, {s for s in shuts if s >= at}, safe, route_from=at)
    return run, at


def test_an_earlier_versions_watermark_stays_every_clocks_floor_through_new_commits() -> None:
    """Restored from ``wm=<ms>`` alone (one watermark per partition), every device's clock
    starts there, and the checkpoints committed after keep it, so a replay from one of them
    judges a newly seen device by it as the run did."""
    dw = DeviceWindows(SIZES, LATENESS, 10**9)
    dw.base = 50_000
    dw.advance_to(dw.base)
    stream: list[Record] = [("old", [R("a", 10_000, 1.0)], 0), ("new", [R("a", 60_000, 2.0)], 0)]
    run = drive(dw, stream, [1], set())
    assert run.late == {(0, 0, 0b11)}  # before the restored watermark: late for its device too
    checkpoint = Checkpoint.decode(run.commits[-1][1].encode())
    assert checkpoint is not None
    assert checkpoint.base == 50_000
    again = DeviceWindows(SIZES, LATENESS, 10**9)
    again.restore(checkpoint, {})
    assert again.clock("never-seen") == 50_000


def test_a_window_the_floor_passed_between_sweeps_is_out_before_the_commit() -> None:
    """The floor passes a quiet device's window (deadline 9 200) by less than a window step
    after its last sweep, so adding records leaves the window open. A commit there restores
    that device at the floor, where the replayed reading is late: the window must be out by
    then, or it is lost."""
    stream: list[Record] = [
        ("quiet", [R("a", 6_500, 1.0)], 0),
        ("live", [R("a", 12_500, 2.0)], 0),  # floor 8 500: swept
        ("live", [R("a", 13_300, 3.0)], 0),  # floor 9 300: not swept by adding
    ]
    whole = drive(DeviceWindows(SIZES, LATENESS, 4000), stream, [1], set())
    safe, checkpoint, emitted = whole.commits[-1]
    quiet = [w for w in whole.windows[:emitted] if w.device_id == "quiet"]
    assert [w.window_end for w in quiet] == [7000, 9000]
    assert (safe, checkpoint.at) == (1, 3)  # the quiet device's windows no longer hold it
    dw = DeviceWindows(SIZES, LATENESS, 4000)
    dw.restore(checkpoint, {"live": 13_300})
    again = drive(dw, stream, [1], set(), safe, route_from=checkpoint.at)
    assert keyed(whole.windows[:emitted] + again.windows) == keyed(whole.windows)


def test_a_quiet_devices_clock_follows_the_log_clock_up_to_its_newest_windows() -> None:
    """A device stops while another keeps the partition busy: its clock follows the log clock
    (the records' Kafka timestamps) from its greatest ts on, so its windows close without its
    next record and without the floor; no further than their deadline, so what it sends after
    them is on time, and a reading for a window so closed is late."""
    stream: list[Record] = [("quiet", [R("a", 10_000, 1.0)], 100_000)]
    stream += [("live", [R("a", 50_000 + k * 500, 0.0)], 100_500 + k * 500) for k in range(8)]
    # Back after 4.5 s of the log clock: 11 900 is in the windows its idle clock closed (their
    # deadline, 12 200, is where it stopped); 12 500 is in the next ones.
    stream.append(("quiet", [R("a", 11_900, 2.0), R("a", 12_500, 3.0)], 104_500))
    run = drive(DeviceWindows(SIZES, LATENESS, 10**9, IDLE), stream, [1], set())
    returned = len(stream) - 1
    emitted_before = next(n for _, cp, n in run.commits if cp.at == returned)
    quiet = [
        (w.size_ms, w.window_start) for w in run.windows[:emitted_before] if w.device_id == "quiet"
    ]
    assert quiet == [(1000, 10_000), (3000, 9_000)]
    assert run.late == {(returned, 0, 0b11)}
    after = [w for w in run.windows if w.device_id == "quiet" and w.window_start >= 12_000]
    assert [(w.size_ms, w.count, w.last) for w in after] == [(1000, 1, 3.0), (3000, 1, 3.0)]
    assert reference(stream, set(), 10**9, IDLE)[1] == run.late


def test_a_gateway_uploading_every_30_s_loses_nothing_under_the_default_idle_time() -> None:
    """A gateway that uploads a batch of its last 30 s every 30 s is quiet for 30 s between
    batches while a live device keeps the partition busy: with the idle time above its
    interval (the service's default is a minute) no reading of it is late; with an idle time
    below it, each batch finds the windows of the previous one closed."""
    stream: list[Record] = []
    for t in range(0, 120_000, 500):  # the live device, every 500 ms, stamped as it sends
        stream.append(("live", [R("a", 1_000_000 + t, 0.0)], 1_000_000 + t))
        if t and t % 30_000 == 0:  # the gateway's batch of the last 30 s, one per second
            readings = [R("a", 1_000_000 + t - 30_000 + k * 1000, 1.0) for k in range(1, 31)]
            stream.append(("gw", readings, 1_000_000 + t))
    long_enough = drive(DeviceWindows(SIZES, LATENESS, 10**9, 60_000), stream, [7], set())
    assert long_enough.late == set()
    assert (
        sum(w.count for w in long_enough.windows if w.device_id == "gw" and w.size_ms == 1000) == 90
    )
    too_short = drive(DeviceWindows(SIZES, LATENESS, 10**9, 5_000), stream, [7], set())
    assert too_short.late
