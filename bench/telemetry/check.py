"""Before timing: Millrace and Quix Streams must produce the same windows on a small workload."""

from __future__ import annotations

from typing import Any

from bench.telemetry.runs import prefill, timed_run
from bench.telemetry.topics import end_offsets_of, read_all, windows_of
from bench.telemetry.workload import MARKER_DEVICE, Workload

AGGREGATES = "telemetry.aggregates.v1"


def same_windows(bootstrap: str, w: Workload) -> dict[str, Any]:
    topic = "bench.check"
    ends = prefill(bootstrap, topic, w)
    millrace_from = end_offsets_of(bootstrap, AGGREGATES)
    timed_run("millrace", bootstrap, topic, w, ends, 300)
    quix_out = "bench.quix.out"
    quix_from = end_offsets_of(bootstrap, quix_out) if _exists(bootstrap, quix_out) else {}
    timed_run("quix", bootstrap, topic, w, ends, 600)
    ours = windows_of(read_all(bootstrap, AGGREGATES, millrace_from), MARKER_DEVICE)
    theirs = windows_of(read_all(bootstrap, quix_out, quix_from), MARKER_DEVICE)
    differing = [k for k in ours.keys() & theirs.keys() if ours[k] != theirs[k]]
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
        "identical": ours == theirs and len(ours) > 0,
    }


def _exists(bootstrap: str, topic: str) -> bool:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415

    return topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
