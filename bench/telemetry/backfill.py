"""Backfill and sparse workloads of ``make bench-telemetry`` (issue 25).

- **backfill**: gateways upload their history one device after another (each device's last
  minutes before the next starts), the shape of a reconnect after an outage. Millrace must
  aggregate all of it exactly (every window, every reading in it: checked against the
  workload's own readings) and about as fast as the same readings sent live, second by second
  (``backfill_vs_live``, goal >= 0.9).
- **sparse**: one reading per series per window (devices reporting every 10 s, 10 s windows),
  so as many windows leave as readings arrive; end to end until the last window is on Kafka,
  against Quix Streams on the same records (``sparse_vs_quix``, goal >= 10), and the peak RSS
  (``sparse_peak_rss_mib``, goal <= 512 for 5,000 devices).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from bench.telemetry.runs import prefill, timed_run
from bench.telemetry.topics import end_offsets_of, read_all, windows_of
from bench.telemetry.workload import MARKER_DEVICE, Workload, readings

AGGREGATES = "telemetry.aggregates.v1"
SIZES_MS = (10_000, 60_000)


def expected_counts(w: Workload) -> Counter[tuple[str, str, int, int]]:
    """Readings per window of the workload (nothing late, nothing out of order in it)."""
    out: Counter[tuple[str, str, int, int]] = Counter()
    for device, r in readings(w):
        ts = int(r["ts"])  # type: ignore[call-overload]
        for size in SIZES_MS:
            out[(device, str(r["metric"]), size, ts - ts % size)] += 1
    return out


def workloads(scale: float = 1.0) -> tuple[Workload, Workload, Workload]:
    """(backfill, the same readings live, sparse) at ``scale`` of the issue's sizes."""
    devices = max(1, round(int(os.environ.get("BENCH_BACKFILL_DEVICES", "1000")) * scale))
    seconds = int(os.environ.get("BENCH_BACKFILL_S", "600"))
    n = devices * 10 * seconds
    common = {"metrics": 10, "per_message": 10, "late_share": 0.0, "disorder_share": 0.0}
    backfill = Workload("backfill", n, devices, by_device=True, **common)  # type: ignore[arg-type]
    live = Workload("backfill_live", n, devices, **common)  # type: ignore[arg-type]
    sparse_devices = max(1, round(int(os.environ.get("BENCH_SPARSE_DEVICES", "5000")) * scale))
    sparse = Workload(
        "sparse",
        max(1, round(int(os.environ.get("BENCH_SPARSE_READINGS", "2000000")) * scale)),
        sparse_devices,
        metrics=1,
        per_message=1,
        interval_ms=10_000,
        late_share=0.0,
        disorder_share=0.0,
    )
    return backfill, live, sparse


def run_backfill(bootstrap: str, backfill: Workload, live: Workload) -> dict[str, Any]:
    """Millrace on the backfill and on the same readings live; the backfill's windows checked."""
    topic = f"bench.{backfill.name}"
    ends = prefill(bootstrap, topic, backfill)
    since = end_offsets_of(bootstrap, AGGREGATES)
    filled = timed_run("millrace", bootstrap, topic, backfill, ends, timeout_s=1800)
    got = windows_of(read_all(bootstrap, AGGREGATES, since), MARKER_DEVICE)
    want = expected_counts(backfill)
    devices = {d for d, *_ in want}
    counts = {k: v[0] for k, v in got.items() if k[0] in devices}
    live_topic = f"bench.{live.name}"
    live_ends = prefill(bootstrap, live_topic, live)
    live_run = timed_run("millrace", bootstrap, live_topic, live, live_ends, timeout_s=1800)
    return {
        "workload": backfill.describe(),
        "backfill_readings_per_s": round(filled.readings_per_s),
        "live_readings_per_s": round(live_run.readings_per_s),
        "backfill_vs_live": round(filled.readings_per_s / live_run.readings_per_s, 3),
        "backfill_windows": len(counts),
        "backfill_windows_expected": len(want),
        "backfill_exact": counts == dict(want),
        "backfill_peak_rss_mib": round(filled.rss_peak_mib),
    }


def run_sparse(bootstrap: str, sparse: Workload, *, quix: bool = True) -> dict[str, Any]:
    """Millrace (and Quix Streams) end to end on the sparse workload."""
    topic = f"bench.{sparse.name}"
    ends = prefill(bootstrap, topic, sparse)
    ours = timed_run("millrace", bootstrap, topic, sparse, ends, timeout_s=1800)
    out: dict[str, Any] = {
        "workload": sparse.describe(),
        "sparse_readings_per_s": round(ours.readings_per_s),
        "sparse_peak_rss_mib": round(ours.rss_peak_mib),
    }
    if quix:
        theirs = timed_run("quix", bootstrap, topic, sparse, ends, timeout_s=3600)
        out["sparse_quix_readings_per_s"] = round(theirs.readings_per_s)
        out["sparse_vs_quix"] = round(ours.readings_per_s / theirs.readings_per_s, 2)
    return out
