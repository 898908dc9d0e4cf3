"""Rendering of the demo's state: a full screen for a terminal, one line per tick otherwise.

Pure functions of a :class:`DemoState` and a clock reading, so what the user sees is tested
without Kafka or a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from millrace.demo.board_view import machine_table, plan_fields, plan_line
from millrace.demo.plan import clock_ms
from millrace.demo.state import DemoState, Window

__all__ = ["clock_ms", "render_screen", "summary_line"]

CLEAR = "\x1b[H\x1b[2J"
COLUMNS = ("device", "metric", "window (UTC)", "size", "count", "mean", "min", "max", "last")
_WIDTHS = (12, 24, 17, 5, 6, 10, 10, 10, 10)


def size_label(size_ms: int) -> str:
    """``5s``, ``1m``, ``250ms``: the way window sizes are configured."""
    for unit, ms in (("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if size_ms % ms == 0:
            return f"{size_ms // ms}{unit}"
    return f"{size_ms}ms"


def elapsed_label(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _device_order(device_id: str) -> tuple[str, str]:
    """``press-0001`` before ``mill-0002``: the fleet's index, not the machine type, first."""
    _, _, suffix = device_id.rpartition("-")
    return suffix.zfill(12), device_id


def _cells(w: Window) -> tuple[str, ...]:
    return (
        w.device_id,
        w.metric,
        f"{clock_ms(w.window_start)}-{clock_ms(w.window_end)}",
        size_label(w.size_ms),
        str(w.count),
        f"{w.mean:.2f}",
        f"{w.min:.2f}",
        f"{w.max:.2f}",
        f"{w.last:.2f}",
    )


def _row(cells: Sequence[str]) -> str:
    parts = [
        c.ljust(width) if i < 4 else c.rjust(width)
        for i, (c, width) in enumerate(zip(cells, _WIDTHS, strict=True))
    ]
    return "  ".join(parts).rstrip()


def counters_line(state: DemoState, now: float) -> str:
    """Devices, readings and their rate, windows by size, DLQ: the flow at a glance."""
    by_size = ", ".join(
        f"{size_label(size)}: {n}" for size, n in sorted(state.windows_by_size.items())
    )
    windows = f"{state.windows}" + (f" ({by_size})" if by_size else "")
    return (
        f"elapsed {elapsed_label(now - state.started)}   devices {len(state.devices)}   "
        f"readings {state.readings} ({state.readings_per_s(now):.1f}/s)   "
        f"windows {windows}   DLQ {state.dlq}"
    )


def alarms_line(state: DemoState) -> str:
    """Active alarms (and how many were raised) and machines by published state."""
    return (
        f"alarms active {len(state.active_alarms)} (raised {state.alarms_raised})   "
        f"machines {state.states_summary()}"
    )


def window_table(state: DemoState, max_rows: int) -> list[str]:
    """The latest window of each device, at most ``max_rows`` devices, then how many more."""
    if not state.latest:
        return ["(no window closed yet: the first appears once a window ends plus its lateness)"]
    ids = sorted(state.latest, key=_device_order)
    lines = [_row(COLUMNS), _row(["-" * w for w in _WIDTHS])]
    lines += [_row(_cells(state.latest[d])) for d in ids[:max_rows]]
    if len(ids) > max_rows:
        lines.append(f"... and {len(ids) - max_rows} more devices")
    return lines


def render_screen(
    state: DemoState,
    now: float,
    header: Sequence[str],
    footer: Sequence[str],
    rows: int,
    *,
    machines: Sequence[str] = (),
) -> str:
    """The whole screen for a terminal of ``rows`` lines, starting with the clear sequence.

    With the plant's ``machines``, a row per machine (state, running and next operation)
    and the plan's line come first; the latest windows fill the rest of the screen.
    """
    top = [*header, "", counters_line(state, now), alarms_line(state), ""]
    if machines:
        top += [plan_line(state), *machine_table(state, machines), ""]
    room = max(3, rows - len(top) - len(footer) - 4)
    body = window_table(state, room)
    return CLEAR + "\n".join([*top, *body, "", *footer]) + "\n"


def summary_line(state: DemoState, now: float) -> str:
    """One line per tick when stdout is not a terminal (CI logs, pipes)."""
    line = (
        f"[{elapsed_label(now - state.started)}] devices={len(state.devices)} "
        f"readings={state.readings} rate={state.readings_per_s(now):.1f}/s "
        f"windows={state.windows} dlq={state.dlq} "
        f"alarms={len(state.active_alarms)}/{state.alarms_raised} "
        f"machines={len(state.machine_states)}"
    )
    if state.board.plan:
        line += " " + plan_fields(state)
    if state.latest:
        newest = max(state.latest.values(), key=lambda w: (w.window_end, -w.size_ms))
        line += (
            f" latest={newest.device_id}/{newest.metric}"
            f"@{clock_ms(newest.window_start)}+{size_label(newest.size_ms)}"
            f" count={newest.count} mean={newest.mean:.2f}"
        )
    return line
