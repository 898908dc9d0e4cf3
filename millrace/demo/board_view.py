"""The plant part of the live view: one row per machine with its state from telemetry, its OEE
over the last reported period, the operation it runs and the next one planned on it, and a line
on the plan as a whole."""

from __future__ import annotations

from collections.abc import Sequence

from millrace.demo.plan import Planned, clock_ms
from millrace.demo.state import DemoState

COLUMNS = ("machine", "state", "OEE", "running now", "next planned (start)")
_WIDTHS = (10, 8, 4, 30, 40)


def _row(cells: Sequence[str]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, _WIDTHS, strict=True)).rstrip()


def _running(state: DemoState, machine_id: str) -> str:
    current = state.board.current(machine_id)
    if current is None:
        return "-"
    if isinstance(current, Planned):
        return current.label
    return f"{current[0][:10]} #{current[1]}"


def _oee(state: DemoState, machine_id: str) -> str:
    """The last reported period's OEE, ``-`` before the first report or when unmeasured."""
    value = state.oee.get(machine_id)
    return "-" if value is None else f"{value:.0%}"


def _next(state: DemoState, machine_id: str) -> str:
    upcoming = state.board.next_up(machine_id)
    return "-" if upcoming is None else f"{upcoming.label} ({clock_ms(upcoming.start_ms)})"


def machine_table(state: DemoState, machines: Sequence[str]) -> list[str]:
    """Every machine of the plant, in the plant file's order."""
    lines = [_row(COLUMNS), _row(["-" * w for w in _WIDTHS])]
    for m in machines:
        status = state.machine_states.get(m, "?")
        lines.append(_row((m, status, _oee(state, m), _running(state, m), _next(state, m))))
    return lines


def plan_line(state: DemoState) -> str:
    """Operations planned, running, done and waiting; how many a re-plan moved, the latest."""
    b = state.board
    line = (
        f"plan: {len(b.plan)} operations   running {len(b.running)}   done {len(b.completed)}   "
        f"waiting {b.waiting()}   moved to another machine {b.moved}"
    )
    return line + (f" (latest {b.last_move})" if b.last_move else "")


def plan_fields(state: DemoState) -> str:
    """The same, ``key=value`` for the one-line-per-tick output, with the machines DOWN."""
    b = state.board
    down = sorted(m for m, s in state.machine_states.items() if s == "DOWN")
    return (
        f"ops={len(b.plan)}/{len(b.running)}/{len(b.completed)} moved={b.moved} "
        f"down={','.join(down) or '-'}"
    )
