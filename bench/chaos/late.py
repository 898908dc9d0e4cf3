"""The late-readings invariant: every reading the independent computation calls late is on
``telemetry.readings.v1.late``, in the record that names its input record, and nothing else is.

A late record names its input by the headers ``late_source_topic``, ``late_source_partition``
and ``late_source_offset`` and holds that input's late readings in their order
(docs/decisions/0012-late-readings.md). Delivery is at least once, so the same record may be
there more than once, always with the same readings.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.chaos.records import Rec, Verdict
from bench.chaos.windows import Expected, LateRows, Source, decode

READINGS = "telemetry.readings.v1"
LATE = "telemetry.readings.v1.late"


def _source(rec: Rec) -> Source | None:
    if rec.header("late_source_topic") != READINGS:
        return None
    try:
        return int(rec.header("late_source_partition")), int(rec.header("late_source_offset"))
    except ValueError:
        return None


def check_late(expected: Expected, late: Iterable[Rec]) -> Verdict:
    v = Verdict("telemetry_late_readings")
    seen: dict[Source, LateRows] = {}
    again = 0
    for rec in late:
        source, batch = _source(rec), decode(rec.value)
        if source is None or batch is None:
            v.fail(f"late record at {rec.partition}@{rec.offset} names no input or is invalid")
            continue
        rows = [(r.metric, r.ts, float(r.value)) for r in batch.readings]
        if source in seen:
            again += 1
            if seen[source] != rows:
                v.fail(f"input {source} on the late topic with two contents")
            continue
        seen[source] = rows
        want = expected.late_records.get(source)
        if want is None:
            v.fail(f"input {source} on the late topic, but none of its readings is late: {rows}")
        elif rows != want:
            v.fail(f"input {source}: late topic has {rows}, the rule calls late {want}")
    missing = sorted(expected.late_records.keys() - seen.keys())
    for source in missing:
        v.fail(f"input {source} has late readings {expected.late_records[source]}, not sent")
    v.figures = {
        "late_readings_by_rule": expected.late,
        "late_records_by_rule": len(expected.late_records),
        "late_records_on_topic": len(seen),
        "late_records_missing": len(missing),
        "late_records_sent_again": again,
    }
    return v
