"""Before timing: Millrace and Quix Streams must compute the same windows on a small workload.

Same windows, same count, min, max and last, bit for bit; mean and stddev equal to 12
significant digits. Quix updates every window per reading (Welford); Millrace builds its 60 s
windows from their 10 s slices (Chan's merge, ADR 0008), which rounds differently in the last
bits. How many windows are bit-identical, and the largest relative difference, are reported.

The two judge lateness by different clocks: Quix by one per partition, Millrace by each
device's own (ADR 0002). A device whose first readings trail the others by more than the
lateness has them aggregated by Millrace and dropped by Quix. So Millrace's windows are checked
against the per-device rule computed here from the workload, and Quix's against Millrace's:
every window Quix emits must be Millrace's too, with the same content; the windows only
Millrace has are counted (``only_millrace``), and the rule has them as well.
"""

from __future__ import annotations

import math
from typing import Any

from bench.telemetry.kafka import recreate_topic
from bench.telemetry.runs import prefill, timed_run
from bench.telemetry.topics import end_offsets_of, read_all, windows_of
from bench.telemetry.workload import MARKER_DEVICE, Workload, readings

AGGREGATES = "telemetry.aggregates.v1"
SIZES_MS = (10_000, 60_000)  # the workers' windows and lateness
LATENESS_MS = 5000


def by_device_clock(
    w: Workload,
) -> dict[tuple[str, str, int, int], tuple[int, float, float, float]]:
    """(count, min, max, last) of every window by the per-device rule: a reading is late for a
    size when its window's end plus the lateness is at or below its device's clock, the
    greatest ts that device sent before it; ``last`` is the value of the greatest ts (the later
    reading of two with the same ts). The workload spans less than the backfill horizon and
    has no pause, so neither the floor nor the idle clock moves a clock."""
    clocks: dict[str, int] = {}
    acc: dict[tuple[str, str, int, int], list[tuple[int, float]]] = {}
    for device, r in readings(w):
        ts, value = int(r["ts"]), float(r["value"])  # type: ignore[call-overload, arg-type]
        clock = clocks.get(device, -1)
        for size in SIZES_MS:
            start = ts - ts % size
            if start + size + LATENESS_MS > clock:
                acc.setdefault((device, str(r["metric"]), size, start), []).append((ts, value))
        clocks[device] = max(clock, ts)
    out = {}
    for key, got in acc.items():
        values = [v for _, v in got]
        last = max(range(len(got)), key=lambda i: (got[i][0], i))
        out[key] = (len(values), min(values), max(values), got[last][1])
    return out


def same_windows(bootstrap: str, w: Workload) -> dict[str, Any]:
    topic = "bench.check"
    ends = prefill(bootstrap, topic, w)
    millrace_from = end_offsets_of(bootstrap, AGGREGATES)
    timed_run("millrace", bootstrap, topic, w, ends, 300)
    # Quix stamps its output with the window's event time (the workload's is years old), so
    # the broker's time retention (7 days, checked every 5 minutes from 30 s after its start)
    # deletes it while the check runs on a slow machine: the output topic keeps everything.
    quix_out = "bench.quix.out"
    recreate_topic(bootstrap, quix_out, 1, {"retention.ms": "-1"})
    timed_run("quix", bootstrap, topic, w, ends, 600)
    ours = windows_of(read_all(bootstrap, AGGREGATES, millrace_from), MARKER_DEVICE)
    theirs = windows_of(read_all(bootstrap, quix_out, {}), MARKER_DEVICE)
    common = ours.keys() & theirs.keys()
    differing = [k for k in common if not _same(ours[k], theirs[k])]
    rule = by_device_clock(w)
    off_rule = [
        k for k in ours.keys() | rule.keys() if k not in ours or rule.get(k) != _cml(ours[k])
    ]
    return {
        "workload": w.describe(),
        "millrace_windows": len(ours),
        "quix_windows": len(theirs),
        "only_millrace": len(ours.keys() - theirs.keys()),
        "only_quix": len(theirs.keys() - ours.keys()),
        "differing": len(differing),
        "examples": [
            {"window": list(k), "millrace": ours[k], "quix": theirs[k]} for k in differing[:3]
        ],
        "bit_identical": sum(ours[k] == theirs[k] for k in common),
        "max_relative_difference": max((_rel(ours[k], theirs[k]) for k in common), default=0.0),
        "off_the_per_device_rule": len(off_rule),
        "same": not differing and not off_rule and theirs.keys() <= ours.keys() and len(ours) > 0,
    }


def _cml(stats: tuple[Any, ...]) -> tuple[int, float, float, float]:
    count, lo, hi, _, _, last = stats
    return (count, lo, hi, last)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """count, min, max and last exact; mean and stddev to 12 significant digits."""
    (count, lo, hi, mean, stddev, last), (count2, lo2, hi2, mean2, stddev2, last2) = a, b
    if (count, lo, hi, last) != (count2, lo2, hi2, last2):
        return False
    return all(
        math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9)
        for x, y in ((mean, mean2), (stddev, stddev2))
    )


def _rel(a: tuple[Any, ...], b: tuple[Any, ...]) -> float:
    return float(
        max(abs(x - y) / max(abs(x), abs(y), 1e-300) for x, y in zip(a[3:5], b[3:5], strict=True))
    )
