"""add_records (the hot path, with its per-series fast path) equals add + observe per reading."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from support.windows import BAD, R, configs, records

from services.telemetry.windows.model import ClosedWindow
from services.telemetry.windows.partition import PartitionWindows


@settings(max_examples=300, deadline=None)
@given(records, configs, st.integers(1, 30))
def test_batches_equal_single_adds(
    recs: list[tuple[str, list[R]]], config: tuple[tuple[int, ...], int], per_poll: int
) -> None:
    sizes, lateness = config
    single, batched = PartitionWindows(sizes, lateness), PartitionWindows(sizes, lateness)
    want: list[ClosedWindow] = []
    want_late: dict[int, int] = {}
    want_offsets: list[int] = []
    got: list[ClosedWindow] = []
    got_late: dict[int, int] = {}
    got_offsets: list[int] = []
    indexed = [(device, readings, offset) for offset, (device, readings) in enumerate(recs)]
    for at in range(0, len(indexed), per_poll):
        poll = indexed[at : at + per_poll]
        for device, readings, offset in poll:
            for r in readings:
                if r.quality is BAD:
                    continue
                mask = single.add(device, r.metric, r.ts, r.value, offset)
                if mask:
                    want_late[mask] = want_late.get(mask, 0) + 1
                single.observe(r.ts)
        want += single.close()
        want_offsets.append(single.safe_offset(-1))
        _, _, late = batched.add_records(poll, BAD)
        for mask, count in late.items():
            got_late[mask] = got_late.get(mask, 0) + count
        got += batched.close()
        got_offsets.append(batched.safe_offset(-1))
        assert batched.open_count == len(batched.open)
    assert got == want
    assert got_late == want_late
    assert got_offsets == want_offsets
    assert _state(batched) == _state(single)
    assert batched.watermark == single.watermark


def _state(pw: PartitionWindows) -> dict[tuple[str, str, int, int], tuple[float, ...]]:
    return {
        key: (w.first_offset, w.count, w.min, w.max, w.mean, w.m2, w.last_ts, w.last)
        for key, w in pw.open.items()
    }
