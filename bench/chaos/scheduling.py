"""The scheduling invariant: the latest stored plan is feasible on its own terms and is what the
service published.

Feasible: every assignment ends after it starts, no two overlap on a machine, and a work order's
operations run in routing order. Published: the latest ``operation-scheduled`` of each planned
operation (highest ``plan_version``, then offset) names the stored machine and times, and a
``schedule-published`` event announces the stored version. An operation the shop floor has
started is not announced again (the floor runs it): its stored assignment must instead be where
and when ``production.operation-started`` says it began.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from bench.chaos.records import Rec, Verdict, in_order

SCHEDULED = "scheduling.operation-scheduled.v1"
PUBLISHED = "scheduling.schedule-published.v1"


@dataclass(frozen=True)
class Stored:
    work_order_id: str
    seq: int
    machine_id: str
    start_s: int
    end_s: int


def _feasibility(plan: list[Stored], v: Verdict) -> None:
    by_machine: dict[str, list[Stored]] = {}
    by_order: dict[str, list[Stored]] = {}
    for a in plan:
        if a.end_s <= a.start_s:
            v.fail(f"{a.work_order_id}/{a.seq} ends at or before its start")
        by_machine.setdefault(a.machine_id, []).append(a)
        by_order.setdefault(a.work_order_id, []).append(a)
    for machine, ops in by_machine.items():
        ops.sort(key=lambda a: a.start_s)
        for a, b in itertools.pairwise(ops):
            if b.start_s < a.end_s:
                v.fail(f"{machine}: {a.work_order_id}/{a.seq} overlaps {b.work_order_id}/{b.seq}")
    for wo, ops in by_order.items():
        ops.sort(key=lambda a: a.seq)
        for a, b in itertools.pairwise(ops):
            if b.start_s < a.end_s:
                v.fail(f"{wo}: operation {b.seq} starts before {a.seq} ends")


def _starts(started: Iterable[Rec]) -> dict[tuple[str, int], tuple[str, int]]:
    """(work order, seq) -> (machine, start in epoch seconds) from the shop floor's events."""
    out = {}
    for rec in started:
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            d = orjson.loads(rec.value or b"")
            out[(str(d["work_order_id"]), int(d["operation_seq"]))] = (
                str(d["machine_id"]),
                int(d["ts"]) // 1000,
            )
    return out


def check_scheduling(
    version: int, plan: list[Stored], events: Iterable[Rec], started: Iterable[Rec] = ()
) -> Verdict:
    v = Verdict("scheduling_plan")
    starts = _starts(started)
    frozen = 0
    _feasibility(plan, v)
    latest: dict[tuple[str, int], tuple[int, dict[str, object]]] = {}
    versions: set[int] = set()
    for rec in in_order(list(events)):
        data = orjson.loads(rec.value or b"{}")
        if rec.topic == PUBLISHED:
            versions.add(int(data["version"]))
            continue
        key = (str(data["work_order_id"]), int(data["operation_seq"]))
        pv = int(data.get("plan_version") or 0)
        if key not in latest or pv >= latest[key][0]:
            latest[key] = (pv, data)
    if version and version not in versions:
        v.fail(f"plan version {version} stored but no schedule-published for it")
    for a in plan:
        got = latest.get((a.work_order_id, a.seq))
        want = (a.machine_id, a.start_s * 1000, a.end_s * 1000)
        if got is None:
            v.fail(f"{a.work_order_id}/{a.seq} planned but never published")
            continue
        data = got[1]
        have = (data["machine_id"], data["planned_start"], data["planned_end"])
        began = starts.get((a.work_order_id, a.seq))
        if began is not None and have != want:
            frozen += 1
            if began[0] != a.machine_id or abs(began[1] - a.start_s) > 1:
                v.fail(f"{a.work_order_id}/{a.seq}: stored {want}, started {began}")
        elif have != want:
            v.fail(f"{a.work_order_id}/{a.seq}: stored {want}, last published {have}")
    v.figures = {
        "plan_version": version,
        "operations_planned": len(plan),
        "versions_published": len(versions),
        "operations_published": len(latest),
        "started_kept_where_they_began": frozen,
    }
    return v
