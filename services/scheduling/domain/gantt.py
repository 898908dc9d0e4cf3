"""A plan as an SVG Gantt chart: machines as rows, time across, one bar per operation.

Bars are coloured per order and labelled ``work order/seq`` where they are wide enough (every bar
has a tooltip); operations ending after their work order's due time get a red outline, blocked
time is hatched, and a line marks ``now``. Each bar carries ``data-work-order``, ``data-seq``,
``data-machine``, ``data-start`` and ``data-end`` (epoch seconds) for tools and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

from services.scheduling.domain.model import Assignment, Plan, Problem

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
    "#9c755f", "#bab0ac", "#86bcb6", "#d4a6c8", "#a0cbe8", "#ffbe7d",
)  # fmt: skip
LEFT, TOP, ROW, WIDTH, BOTTOM = 130, 56, 26, 1000, 48
# Tick steps in seconds, the first giving at most ~10 ticks is used.
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
         86400, 172800, 604800)  # fmt: skip
EPOCH_LABELS_FROM = 10**9
# Times from this one on are wall-clock instants (labelled as dates); smaller ones are plain
# numbers of seconds, as in job-shop instances.
Scale = Callable[[int], float]  # epoch seconds -> x pixel


def gantt_svg(problem: Problem, plan: Plan, *, title: str = "") -> str:
    rows = [m.machine_id for m in problem.machines]
    rows += sorted({a.machine_id for a in plan.assignments} - set(rows))
    t0 = min([problem.now, *(a.start for a in plan.assignments)])
    t1 = max([problem.now + 1, *(a.end for a in plan.assignments)])
    t1 = max(t1, t0 + 1)

    def x(t: int) -> float:
        return LEFT + (min(max(t, t0), t1) - t0) * WIDTH / (t1 - t0)

    height = TOP + ROW * len(rows) + BOTTOM
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>',
        f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
        *_legend(),
    ]
    row_of = {m: k for k, m in enumerate(rows)}
    for k, machine in enumerate(rows):
        y = TOP + k * ROW
        out.append(
            f'<text x="{LEFT - 6}" y="{y + ROW / 2 + 4}" text-anchor="end">{escape(machine)}</text>'
        )
        out.append(
            f'<line x1="{LEFT}" y1="{y + ROW}" x2="{LEFT + WIDTH}" y2="{y + ROW}" stroke="#ddd"/>'
        )
    for m in problem.machines:
        for iv in m.unavailable:
            if iv.end > t0 and iv.start < t1:
                y = TOP + row_of[m.machine_id] * ROW
                out.append(
                    f'<rect class="unavailable" data-machine={quoteattr(m.machine_id)} '
                    f'x="{x(iv.start):.1f}" y="{y + 2}" width="{x(iv.end) - x(iv.start):.1f}" '
                    f'height="{ROW - 4}" fill="url(#hatch)"/>'
                )
    out += _axis(t0, t1, x, TOP + ROW * len(rows))
    out += _bars(problem, plan.assignments, x, row_of)
    now = x(problem.now)
    out.append(
        f'<line class="now" data-time="{problem.now}" x1="{now:.1f}" y1="{TOP - 6}" x2="{now:.1f}" '
        f'y2="{TOP + ROW * len(rows)}" stroke="#d62728" stroke-dasharray="4 3" stroke-width="1.5"/>'
    )
    out.append(f'<text x="{now + 3:.1f}" y="{TOP - 8}" fill="#d62728">now</text>')
    out.append("</svg>")
    return "\n".join(out)


def _bars(
    problem: Problem, assignments: tuple[Assignment, ...], x: Scale, row_of: dict[str, int]
) -> list[str]:
    orders = {wo.work_order_id: wo.order_id or wo.work_order_id for wo in problem.work_orders}
    due = {wo.work_order_id: wo.due for wo in problem.work_orders}
    colour: dict[str, str] = {}
    out: list[str] = []
    for a in sorted(assignments, key=lambda a: (a.start, a.machine_id)):
        order = orders.get(a.work_order_id, a.work_order_id)
        fill = colour.setdefault(order, PALETTE[len(colour) % len(PALETTE)])
        deadline = due.get(a.work_order_id)
        late = deadline is not None and a.end > deadline
        left, right = x(a.start), x(a.end)
        y = TOP + row_of[a.machine_id] * ROW
        label = f"{a.work_order_id}/{a.seq}"
        stroke = 'stroke="#d62728" stroke-width="2"' if late else 'stroke="#333" stroke-width="0.5"'
        out.append(
            f'<g><rect class="{"op late" if late else "op"}" '
            f"data-work-order={quoteattr(a.work_order_id)} "
            f'data-seq="{a.seq}" data-machine={quoteattr(a.machine_id)} data-start="{a.start}" '
            f'data-end="{a.end}" data-order={quoteattr(order)} x="{left:.1f}" y="{y + 3}" '
            f'width="{max(right - left, 1):.1f}" height="{ROW - 6}" fill="{fill}" {stroke}>'
            f"<title>{escape(label)} on {escape(a.machine_id)}: {_label(a.start, 0)} to "
            f"{_label(a.end, 0)}{' (late)' if late else ''}</title></rect>"
        )
        if right - left >= 7 * len(label):
            out.append(
                f'<text x="{left + 3:.1f}" y="{y + ROW / 2 + 4}" fill="#fff">{escape(label)}</text>'
            )
        out.append("</g>")
    return out


def _axis(t0: int, t1: int, x: Scale, bottom: int) -> list[str]:
    step = next((s for s in STEPS if (t1 - t0) / s <= 10), STEPS[-1])
    out = [f'<line x1="{LEFT}" y1="{bottom}" x2="{LEFT + WIDTH}" y2="{bottom}" stroke="#333"/>']
    tick = -(-t0 // step) * step
    while tick <= t1:
        px = x(tick)
        out.append(
            f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{bottom + 4}" stroke="#eee"/>'
        )
        out.append(
            f'<text class="tick" x="{px:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{_label(tick, step)}</text>"
        )
        tick += step
    return out


def _label(t: int, step: int) -> str:
    """A time's label, as precise as the ticks are ``step`` apart (seconds only when they are
    under a minute apart, so that no two ticks read the same); ``step`` 0: to the second."""
    if t < EPOCH_LABELS_FROM:
        return str(t)
    at = datetime.fromtimestamp(t, UTC)
    if step == 0:
        return at.strftime("%d %b %H:%M:%S")
    if step < 60:
        return at.strftime("%H:%M:%S")
    return at.strftime("%d %b %H:%M" if step < 86400 else "%d %b")


def _legend() -> list[str]:
    y = 34
    return [
        f'<rect x="{LEFT}" y="{y}" width="14" height="10" fill="#fff" stroke="#d62728" '
        'stroke-width="2"/>',
        f'<text x="{LEFT + 18}" y="{y + 9}">late (ends after its due time)</text>',
        f'<rect x="{LEFT + 200}" y="{y}" width="14" height="10" fill="url(#hatch)"/>',
        f'<text x="{LEFT + 218}" y="{y + 9}">unavailable</text>',
        f'<line x1="{LEFT + 300}" y1="{y + 5}" x2="{LEFT + 316}" y2="{y + 5}" stroke="#d62728" '
        'stroke-dasharray="4 3"/>',
        f'<text x="{LEFT + 320}" y="{y + 9}">now</text>',
        f'<text x="{LEFT + 360}" y="{y + 9}">bar: work order/operation, a colour per order</text>',
    ]
