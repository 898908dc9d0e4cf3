"""Shop-floor facts and delivery faults on real Kafka and PostgreSQL: a started operation stays
frozen where it runs, a completion far from plan re-plans, and duplicated and reordered events
leave the same state as the events delivered once in order."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import orjson
from support.metrics import sample
from support.scheduling import (
    SCHEDULED,
    bearer,
    fetch,
    fresh_database,
    load_sample_plant,
    make_settings,
    offsets,
    placed,
    plan_after,
    plan_with,
    prepare,
    publish,
    read_topic,
    running,
    wait_for,
)

from contracts.base import Contract
from contracts.envelope import new_event
from contracts.orders import OrderCancelled
from contracts.production import OperationCompleted, OperationStarted
from contracts.telemetry import MachineState, MachineStateName
from services.scheduling.domain.model import Plan, Problem
from services.scheduling.settings import SchedulingSettings
from shared.kafka import make_producer

PLACED, CANCELLED = "orders.order-placed.v1", "orders.order-cancelled.v1"
STARTED, COMPLETED = "production.operation-started.v1", "production.operation-completed.v1"
STATES = "telemetry.machine-states.v1"


def op(a: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    return next(
        x
        for x in plan["assignments"]
        if (x["work_order_id"], x["seq"]) == (a["work_order_id"], a["seq"])
    )


async def test_a_started_operation_stays_frozen_and_a_late_completion_replans(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(
        await fresh_database(database_url), kafka_bootstrap, scheduling_replan_drift_s=60
    )
    await prepare(settings)
    async with running(settings) as client:
        await load_sample_plant(settings)
        order = placed(f"f-{uuid.uuid4().hex[:8]}", [("frame-road", 1)])
        await publish(settings, [(PLACED, order.order_id, order)])
        wo = f"{order.order_id}/1"
        plan = await plan_with(client, {wo})
        cut = next(a for a in plan["assignments"] if a["work_order_id"] == wo and a["seq"] == 10)
        # The shop floor starts the cut on the other cutting machine, 30 s ago.
        other = "laser-01" if cut["machine_id"] != "laser-01" else "saw-01"
        began = (int(time.time()) - 30) * 1000
        started = OperationStarted(
            work_order_id=wo,
            order_id=order.order_id,
            line_no=1,
            operation_seq=10,
            machine_id=other,
            ts=began,
        )
        await publish(settings, [(STARTED, wo, started)])
        await wait_for(
            lambda: fetch(
                settings, "SELECT 1 FROM scheduling.progress WHERE work_order_id = $1", wo
            ),
            30,
            "the start recorded",
        )
        assert (await client.post("/v1/schedule/replan", headers=bearer())).status_code == 202
        frozen = await plan_after(client, plan["version"], what="the manual re-plan")
        assert "manual" in frozen["triggers"]
        running_cut = op(cut, frozen)
        assert (running_cut["machine_id"], running_cut["start_ms"]) == (other, began)
        assert running_cut["end_ms"] == began + (600 + 240) * 1000
        mill = next(a for a in frozen["assignments"] if a["work_order_id"] == wo and a["seq"] == 20)
        assert mill["start_ms"] >= running_cut["end_ms"]

        # Announced again: the moved operations of that version, never the running one.
        version = frozen["version"]
        rows = await fetch(
            settings, "SELECT payload FROM scheduling.outbox WHERE topic = $1", SCHEDULED
        )
        announced = [orjson.loads(r["payload"]) for r in rows]
        assert {d["plan_version"] for d in announced} >= {plan["version"]}
        assert not [
            d
            for d in announced
            if d["plan_version"] == version and (d["work_order_id"], d["operation_seq"]) == (wo, 10)
        ]

        # It completes now, 13 minutes before its planned end: far enough to re-plan.
        done = OperationCompleted(
            work_order_id=wo,
            order_id=order.order_id,
            line_no=1,
            operation_seq=10,
            machine_id=other,
            ts=began + 30_000,
            quantity_good=1,
        )
        await publish(settings, [(COMPLETED, wo, done)])
        after = await plan_after(client, version, what="the drift re-plan")
        assert "drift" in after["triggers"]
        ops = [a for a in after["assignments"] if a["work_order_id"] == wo]
        assert [a["seq"] for a in ops] == [20, 30, 40, 50]
        assert ops[0]["start_ms"] >= done.ts


def story(run: str, now_ms: int) -> list[tuple[str, str, Contract]]:
    """Events of three orders and two machines, in the order they happened."""
    one, two, three = (placed(f"r-{run}-{n}", [("stem-cnc", n)]) for n in (1, 2, 3))
    cancel = OrderCancelled(
        order_id=two.order_id, customer=two.customer, cancelled_at=two.placed_at
    )
    press, saw = f"press-{run}", f"saw-{run}"
    wo = f"{one.order_id}/1"
    return [
        (PLACED, one.order_id, one),
        (PLACED, two.order_id, two),
        (PLACED, three.order_id, three),
        (CANCELLED, two.order_id, cancel),
        (
            STATES,
            press,
            MachineState(machine_id=press, state=MachineStateName.RUNNING, since=now_ms - 9000),
        ),
        (
            STATES,
            press,
            MachineState(machine_id=press, state=MachineStateName.DOWN, since=now_ms - 5000),
        ),
        (
            STATES,
            saw,
            MachineState(machine_id=saw, state=MachineStateName.DOWN, since=now_ms - 8000),
        ),
        (
            STATES,
            saw,
            MachineState(machine_id=saw, state=MachineStateName.IDLE, since=now_ms - 1000),
        ),
        (
            STARTED,
            wo,
            OperationStarted(
                work_order_id=wo,
                order_id=one.order_id,
                line_no=1,
                operation_seq=10,
                machine_id=saw,
                ts=now_ms - 7000,
            ),
        ),
        (
            COMPLETED,
            wo,
            OperationCompleted(
                work_order_id=wo,
                order_id=one.order_id,
                line_no=1,
                operation_seq=10,
                machine_id=saw,
                ts=now_ms - 2000,
            ),
        ),
    ]


STATE_SQL = (
    "SELECT order_id, customer, due, priority, lines::text, placed, cancelled"
    " FROM scheduling.orders WHERE order_id LIKE $1 ORDER BY order_id",
    "SELECT machine_id, state, since FROM scheduling.machine_states WHERE machine_id LIKE $1"
    " ORDER BY machine_id",
    "SELECT work_order_id, seq, machine_id, started, completed FROM scheduling.progress"
    " WHERE work_order_id LIKE $1 ORDER BY work_order_id, seq",
)


async def state_after(
    settings: SchedulingSettings, events: list[tuple[str, str, Contract]], ids: list[str], run: str
) -> list[list[tuple[Any, ...]]]:
    await prepare(settings)
    async with running(settings):
        await publish(settings, events, ids=ids)

        async def applied() -> bool:
            rows = await fetch(settings, "SELECT count(*) AS n FROM scheduling.inbox")
            return bool(rows) and rows[0]["n"] == len(set(ids))

        await wait_for(applied, 60, "every event applied")
    return [[tuple(r) for r in await fetch(settings, sql, f"%{run}%")] for sql in STATE_SQL]


async def test_duplicated_and_reordered_events_leave_the_same_state(
    database_url: str, kafka_bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:8]
    events = story(run, int(time.time()) * 1000)
    ids = [str(uuid.uuid4()) for _ in events]
    off = {"scheduling_planner_enabled": False, "scheduling_relay_enabled": False}
    in_order = await state_after(
        make_settings(await fresh_database(database_url), kafka_bootstrap, **off), events, ids, run
    )
    # Every event twice (the same ce_id), shuffled: cancellations before placements, older
    # machine states after newer ones, completions before starts.
    order = list(range(len(events))) * 2
    random.Random(64).shuffle(order)
    first = order.index
    # This seed cancels before it places, delivers older states after newer ones (both
    # machines) and the completion before the start.
    assert first(3) < first(1)
    assert first(5) < first(4)
    assert first(7) < first(6)
    assert first(9) < first(8)
    shuffled = await state_after(
        make_settings(await fresh_database(database_url), kafka_bootstrap, **off),
        [events[i] for i in order],
        [ids[i] for i in order],
        run,
    )
    assert shuffled == in_order
    orders, machines, progress = in_order
    assert [(r[0].rsplit("-", 1)[1], r[5], r[6]) for r in orders] == [
        ("1", True, False),
        ("2", True, True),
        ("3", True, False),
    ]
    assert [(r[0].split("-")[0], r[1]) for r in machines] == [("press", "DOWN"), ("saw", "IDLE")]
    assert [(r[1], r[3] is not None, r[4] is not None) for r in progress] == [(10, True, True)]


async def test_poison_goes_to_the_dlq_and_the_partition_moves_on(
    database_url: str, kafka_bootstrap: str
) -> None:
    off = {"scheduling_planner_enabled": False, "scheduling_relay_enabled": False}
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap, **off)
    await prepare(settings)
    dlq_start = await offsets(settings, f"{PLACED}.dlq")
    key = f"p-{uuid.uuid4().hex[:8]}"
    good = placed(key, [("stem-cnc", 1)])
    async with running(settings):
        producer = make_producer(settings, role="test")
        await producer.start()
        try:
            envelope = new_event(topic=PLACED, service="test", subject=key)
            bad = orjson.dumps({"order_id": key, "lines": "not a list"})
            await producer.send_and_wait(PLACED, bad, key=key.encode(), headers=envelope.headers())
        finally:
            await producer.stop()
        await publish(settings, [(PLACED, key, good)])  # same key: the same partition, after it

        async def applied() -> bool:
            return bool(
                await fetch(settings, "SELECT 1 FROM scheduling.orders WHERE order_id = $1", key)
            )

        await wait_for(applied, 30, "the good order after the poison")
    dead = await read_topic(
        settings, dlq_start, lambda recs: any(h.get("ce_subject") == key for h, _ in recs)
    )
    headers = next(h for h, _ in dead if h.get("ce_subject") == key)
    assert headers["dlq_reason"] == "schema"
    assert headers["dlq_source_topic"] == PLACED
    assert headers["dlq_service"] == "scheduling"


def failing_solver(problem: Problem, *, time_limit_s: float, workers: int) -> Plan:
    raise RuntimeError("a solver bug on this problem")


async def test_a_failing_solver_still_yields_the_greedy_plan(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    await prepare(settings)
    failures = sample("millrace_scheduling_solver_failures_total")
    async with running(settings, solver=failing_solver) as client:
        await load_sample_plant(settings)
        order = placed(f"g-{uuid.uuid4().hex[:8]}", [("rack-cargo", 2)])
        await publish(settings, [(PLACED, order.order_id, order)])
        plan = await plan_with(client, {f"{order.order_id}/1"})
    assert plan["status"] == "greedy"
    assert sample("millrace_scheduling_solver_failures_total") > failures
    assert len([a for a in plan["assignments"] if a["order_id"] == order.order_id]) == 6
