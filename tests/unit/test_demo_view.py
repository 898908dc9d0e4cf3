"""The demo's live view: state accumulation, rates and rendering, without Kafka or a terminal."""

from __future__ import annotations

from typing import Any

import pytest

from millrace.demo.state import DemoState, RateMeter, Window
from millrace.demo.view import (
    CLEAR,
    alarms_line,
    counters_line,
    render_screen,
    size_label,
    summary_line,
    window_table,
)

T0 = 1_732_262_400_000  # 2024-11-22T08:00:00Z


def agg(device: str, metric: str = "spindle_temp_c", start: int = T0, size: int = 5_000,
        **over: Any) -> dict[str, Any]:  # fmt: skip
    record = {
        "device_id": device, "metric": metric, "window_start": start,
        "window_end": start + size, "count": 10, "min": 70.0, "max": 72.5,
        "mean": 71.25, "stddev": 0.7, "last": 71.9,
    }  # fmt: skip
    return record | over


def test_rate_is_events_over_the_trailing_span() -> None:
    meter = RateMeter(origin=0.0, span_s=5.0)
    for t in range(1, 11):
        meter.add(float(t), 100)
    assert meter.rate(10.0) == pytest.approx(500 / 5.0)
    assert meter.rate(9.0) == pytest.approx(400 / 5.0)
    assert meter.rate(20.0) == 0.0


def test_rate_before_a_full_span_uses_the_time_elapsed() -> None:
    meter = RateMeter(origin=0.0, span_s=5.0)
    meter.add(1.0, 60)
    meter.add(2.0, 60)
    assert meter.rate(2.0) == pytest.approx(60.0)
    assert RateMeter(origin=3.0).rate(3.0) == 0.0


def test_state_counts_batches_devices_windows_and_dlq() -> None:
    state = DemoState(started=0.0)
    state.record_batch("press-0001", 3, now=1.0)
    state.record_batch("mill-0002", 3, now=1.0)
    state.record_batch("press-0001", 2, now=2.0)
    state.record_window(Window.from_record(agg("press-0001")))
    state.record_window(Window.from_record(agg("press-0001", size=60_000)))
    state.record_dlq()
    assert (state.readings, state.messages, len(state.devices)) == (8, 3, 2)
    assert state.windows_by_size == {5_000: 1, 60_000: 1}
    assert state.dlq == 1
    assert state.readings_per_s(2.0) == pytest.approx(4.0)


def test_latest_window_per_device_prefers_later_end_then_smaller_size() -> None:
    state = DemoState(started=0.0)
    state.record_window(Window.from_record(agg("press-0001", start=T0 + 5_000)))
    state.record_window(Window.from_record(agg("press-0001", start=T0)))
    assert state.latest["press-0001"].window_start == T0 + 5_000
    # A 1m window ending at the same instant as a 5s one does not hide the 5s one.
    state.record_window(Window.from_record(agg("press-0001", start=T0 - 50_000, size=60_000)))
    assert state.latest["press-0001"].size_ms == 5_000


def test_window_reader_ignores_unknown_fields_and_rejects_missing_ones() -> None:
    assert Window.from_record(agg("lathe-0003", quality="good")).device_id == "lathe-0003"
    record = agg("lathe-0003")
    del record["mean"]
    with pytest.raises(KeyError):
        Window.from_record(record)


def test_table_lists_latest_window_per_device_in_fleet_order() -> None:
    state = DemoState(started=0.0)
    for device in ("mill-0002", "press-0001", "lathe-0003"):
        state.record_window(Window.from_record(agg(device, mean=12.345)))
    lines = window_table(state, max_rows=10)
    assert lines[0].split() == [
        "device", "metric", "window", "(UTC)", "size", "count", "mean", "min", "max", "last"
    ]  # fmt: skip
    rows = lines[2:]
    assert [r.split()[0] for r in rows] == ["press-0001", "mill-0002", "lathe-0003"]
    assert rows[0].split() == [
        "press-0001", "spindle_temp_c", "08:00:00-08:00:05", "5s", "10",
        "12.35", "70.00", "72.50", "71.90",
    ]  # fmt: skip


def test_table_is_cut_to_the_room_available() -> None:
    state = DemoState(started=0.0)
    for i in range(1, 8):
        state.record_window(Window.from_record(agg(f"press-{i:04d}")))
    lines = window_table(state, max_rows=3)
    assert len(lines) == 2 + 3 + 1
    assert lines[-1] == "... and 4 more devices"


def test_empty_table_explains_why() -> None:
    assert "no window closed yet" in window_table(DemoState(started=0.0), 10)[0]


def test_screen_clears_then_shows_header_counters_table_footer() -> None:
    state = DemoState(started=0.0)
    state.record_batch("press-0001", 3, now=1.0)
    state.record_window(Window.from_record(agg("press-0001")))
    screen = render_screen(state, 61.0, ["Millrace demo"], ["Ctrl-C to stop"], rows=40)
    assert screen.startswith(CLEAR)
    lines = screen[len(CLEAR) :].splitlines()
    assert lines[0] == "Millrace demo"
    assert lines[2].startswith("elapsed 01:01   devices 1   readings 3")
    assert any(line.startswith("press-0001") for line in lines)
    assert lines[-1] == "Ctrl-C to stop"


def test_counters_and_summary_line() -> None:
    state = DemoState(started=0.0)
    for t in range(1, 6):
        state.record_batch(f"press-{t:04d}", 12, now=float(t))
    state.record_window(Window.from_record(agg("press-0001", size=5_000)))
    state.record_window(Window.from_record(agg("press-0001", size=60_000, start=T0)))
    counters = counters_line(state, 5.0)
    assert "readings 60 (12.0/s)" in counters
    assert "windows 2 (5s: 1, 1m: 1)" in counters
    line = summary_line(state, 5.0)
    assert line.startswith("[00:05] devices=5 readings=60 rate=12.0/s windows=2 dlq=0")
    assert "latest=press-0001/spindle_temp_c@08:00:00+1m count=10 mean=71.25" in line


@pytest.mark.parametrize(
    ("ms", "label"), [(5_000, "5s"), (60_000, "1m"), (3_600_000, "1h"), (250, "250ms")]
)
def test_size_label(ms: int, label: str) -> None:
    assert size_label(ms) == label


def test_alarms_and_machine_states_are_counted() -> None:
    state = DemoState(started=0.0)
    state.record_alarm({"device_id": "press-0001", "rule": "hot", "state": "raised"})
    state.record_alarm({"device_id": "press-0002", "rule": "hot", "state": "raised"})
    state.record_alarm({"device_id": "press-0001", "rule": "hot", "state": "cleared"})
    state.record_machine_state({"machine_id": "press-0001", "state": "RUNNING"})
    state.record_machine_state({"machine_id": "press-0002", "state": "IDLE"})
    state.record_machine_state({"machine_id": "press-0002", "state": "RUNNING"})
    assert alarms_line(state) == "alarms active 1 (raised 2)   machines RUNNING 2"
    assert "alarms=1/2 machines=2" in summary_line(state, 1.0)
