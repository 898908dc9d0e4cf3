"""OEE on real Kafka and PostgreSQL: machine states and a completion of one closed period
become one ``scheduling.oee-reported.v1`` event with the expected factors."""

from __future__ import annotations

import asyncio
import time
import uuid

import orjson
import pytest
from support.scheduling import (
    fetch,
    fresh_database,
    load_sample_plant,
    make_settings,
    offsets,
    placed,
    prepare,
    publish,
    read_topic,
    running,
    wait_for,
)

from contracts.envelope import derived_id, new_event
from contracts.masterdata import Machine
from contracts.production import OperationCompleted, OperationStarted
from contracts.telemetry import MachineState, MachineStateName
from shared.kafka import make_producer

OEE = "scheduling.oee-reported.v1"
MACHINES = "masterdata.machines.v1"
STATES = "telemetry.machine-states.v1"
PERIOD = 5


async def test_a_closed_period_is_reported_once_with_its_factors(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(
        await fresh_database(database_url),
        kafka_bootstrap,
        scheduling_planner_enabled=False,
        scheduling_oee_period_s=PERIOD,
        scheduling_oee_grace_s=1,
        scheduling_duration_scale=0.01,
    )
    await prepare(settings)
    start_offsets = await offsets(settings, OEE)
    machine = f"oee-{uuid.uuid4().hex[:8]}"
    # a period far enough ahead that every event is in before it closes
    start = (int(time.time()) // PERIOD + 3) * PERIOD
    order = placed(f"oee-{uuid.uuid4().hex[:8]}", [("stem-cnc", 4)])
    wo = f"{order.order_id}/1"
    producer = make_producer(settings, role="test")
    await producer.start()
    try:
        async with running(settings):
            await load_sample_plant(settings)
            record = Machine(
                machine_id=machine, name="OEE test saw", capabilities=["cutting"], work_center="t"
            )
            envelope = new_event(topic=MACHINES, service="test", subject=machine)
            await producer.send_and_wait(
                MACHINES,
                orjson.dumps(record.model_dump(mode="json")),
                key=machine.encode(),
                headers=envelope.headers(),
            )

            def state(name: MachineStateName, at: int) -> MachineState:
                return MachineState(machine_id=machine, state=name, since=at * 1000)

            ids = {"order_id": order.order_id, "line_no": 1, "operation_seq": 10}
            ids["machine_id"] = machine
            await publish(
                settings,
                [
                    ("orders.order-placed.v1", order.order_id, order),
                    (
                        "telemetry.machine-states.v1",
                        machine,
                        state(MachineStateName.RUNNING, start - 100),
                    ),
                    (
                        "telemetry.machine-states.v1",
                        machine,
                        state(MachineStateName.DOWN, start + 2),
                    ),
                    (
                        "telemetry.machine-states.v1",
                        machine,
                        state(MachineStateName.RUNNING, start + 3),
                    ),
                    (
                        "production.operation-started.v1",
                        wo,
                        OperationStarted(work_order_id=wo, ts=(start - 1) * 1000, **ids),
                    ),
                    (
                        "production.operation-completed.v1",
                        wo,
                        OperationCompleted(
                            work_order_id=wo,
                            ts=(start + 4) * 1000,
                            quantity_good=3,
                            quantity_scrap=1,
                            **ids,
                        ),
                    ),
                ],
            )

            async def reported() -> bool:
                return bool(
                    await fetch(
                        settings,
                        "SELECT 1 FROM scheduling.oee_reports WHERE machine_id = $1"
                        " AND period_start = $2",
                        machine,
                        start,
                    )
                )

            await wait_for(reported, 60, "the period's report")
            ce_id = derived_id("scheduling", "oee", machine, start * 1000)
            records = await read_topic(
                settings, start_offsets, lambda recs: any(h["ce_id"] == ce_id for h, _ in recs)
            )
            await asyncio.sleep(PERIOD / 2)  # another round: the period stays reported once
            rows = await fetch(
                settings,
                "SELECT count(*) AS n FROM scheduling.outbox WHERE ce_id = $1",
                ce_id,
            )
    finally:
        await producer.send_and_wait(MACHINES, None, key=machine.encode())  # withdraw it
        await producer.stop()
    assert rows[0]["n"] == 1
    (event,) = [d for h, d in records if h["ce_id"] == ce_id]
    assert (event["period_start"], event["period_end"]) == (start * 1000, (start + PERIOD) * 1000)
    # RUNNING 2 s, DOWN 1 s, RUNNING 2 s of 5 planned
    assert (event["planned_s"], event["running_s"]) == (5, 4)
    assert event["availability"] == pytest.approx(0.8)
    # stem-cnc's cut: (300 s + 4 units x 60 s) x 0.01 = 5 s ideal (rounded), 5 s actual
    assert (event["ideal_s"], event["actual_s"]) == (5, 5)
    assert event["performance"] == pytest.approx(1.0)
    assert (event["good"], event["scrap"], event["quality"]) == (3, 1, 0.75)
    assert event["oee"] == pytest.approx(0.8 * 1.0 * 0.75)
