"""The scheduling service on real Kafka and PostgreSQL: master data and orders in, a feasible
plan out (API and Kafka), what each token may see, and re-planning around a DOWN machine."""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

from support.scheduling import (
    ACME_TOKEN,
    PUBLISHED,
    SCHEDULED,
    assert_feasible,
    bearer,
    fresh_database,
    load_sample_plant,
    make_settings,
    offsets,
    placed,
    plan_after,
    plan_with,
    prepare,
    problem_and_plan,
    publish,
    read_topic,
    running,
)
from support.scheduling_validator import violations

from contracts.envelope import derived_id
from contracts.telemetry import MachineState, MachineStateName

PLACED = "orders.order-placed.v1"
STATES = "telemetry.machine-states.v1"


async def test_orders_in_a_feasible_plan_out_on_the_api_and_on_kafka(
    database_url: str, kafka_bootstrap: str
) -> None:
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    await prepare(settings)
    start = {t: await offsets(settings, t) for t in (PUBLISHED, SCHEDULED)}
    async with running(settings) as client:
        plant = await load_sample_plant(settings)
        run = uuid.uuid4().hex[:8]
        orders = [
            placed(f"o-{run}-1", [("frame-road", 2), ("stem-cnc", 3)]),
            placed(f"o-{run}-2", [("hub-rear", 4)], customer="globex"),
        ]
        await publish(settings, [(PLACED, o.order_id, o) for o in orders])
        lines = {
            f"{o.order_id}/{ln.line_no}": (ln.sku, ln.quantity) for o in orders for ln in o.lines
        }

        plan = await plan_with(client, set(lines))
        assert_feasible(plan, plant, lines)
        assert plan["status"] in ("optimal", "feasible", "greedy")
        assert plan["unplanned"] == []

        # what each caller may see
        assert (await client.get("/v1/schedule")).status_code == 401
        mine = (await client.get("/v1/schedule", headers=bearer(ACME_TOKEN))).json()
        assert {a["order_id"] for a in mine["assignments"]} == {orders[0].order_id}
        assert len(mine["assignments"]) == 5 + 3
        for path in ("/v1/schedule/gantt.svg", "/v1/machines/saw-01/queue", "/v1/plans/x"):
            assert (await client.get(path, headers=bearer(ACME_TOKEN))).status_code == 403
        assert (
            await client.post("/v1/schedule/replan", headers=bearer(ACME_TOKEN))
        ).status_code == 403
        assert (await client.get("/v1/machines/nope/queue", headers=bearer())).status_code == 404
        queue = (await client.get("/v1/machines/weld-01/queue", headers=bearer())).json()
        assert [a["machine_id"] for a in queue["operations"]] == ["weld-01"] * len(
            queue["operations"]
        )
        stored = await client.get(
            f"/v1/plans/{settings.scheduling_plan_id}",
            params={"version": plan["version"]},
            headers=bearer(),
        )
        assert stored.json() == plan

        # the Gantt chart draws exactly the plan's assignments
        svg = await client.get("/v1/schedule/gantt.svg", headers=bearer())
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        drawn = {
            (
                e.get("data-work-order"),
                e.get("data-seq"),
                e.get("data-machine"),
                e.get("data-start"),
                e.get("data-end"),
            )
            for e in ElementTree.fromstring(svg.text).iter()
            if e.get("data-work-order") is not None
        }
        assert drawn == {
            (
                a["work_order_id"],
                str(a["seq"]),
                a["machine_id"],
                str(a["start_ms"] // 1000),
                str(a["end_ms"] // 1000),
            )
            for a in plan["assignments"]
        }

        marked = {
            (e.get("data-work-order"), int(e.get("data-seq") or 0))
            for e in ElementTree.fromstring(svg.text).iter()
            if "late" in (e.get("class") or "").split()
        }
        assert marked == {(a["work_order_id"], a["seq"]) for a in plan["assignments"] if a["late"]}

        # an independent check of the version against the problem rebuilt from the tables
        problem, kept = await problem_and_plan(settings, plan["version"])
        assert violations(problem, kept) == []

        # on Kafka: the version's schedule-published, and every operation scheduled once
        plan_id, version = settings.scheduling_plan_id, plan["version"]
        published = await read_topic(
            settings,
            start[PUBLISHED],
            lambda recs: any(d["plan_id"] == plan_id and d["version"] == version for _, d in recs),
        )
        (head, event) = next((h, d) for h, d in published if d["version"] == version)
        assert head["ce_id"] == derived_id("scheduling", plan_id, version, "published")
        assert event["operations_planned"] == len(plan["assignments"])
        assert event["status"] == plan["status"]
        keys = {(a["work_order_id"], a["seq"]) for a in plan["assignments"]}

        def announced(recs: list[tuple[dict[str, str], dict[str, object]]]) -> set[object]:
            return {
                (d["work_order_id"], d["operation_seq"]) for _, d in recs if d["plan_id"] == plan_id
            }

        scheduled = await read_topic(settings, start[SCHEDULED], lambda r: keys <= announced(r))
        last = {}
        for _, d in scheduled:
            if d["plan_id"] == plan_id:
                last[(d["work_order_id"], d["operation_seq"])] = d
        for a in plan["assignments"]:
            d = last[(a["work_order_id"], a["seq"])]
            assert (d["machine_id"], d["planned_start"], d["planned_end"]) == (
                a["machine_id"],
                a["start_ms"],
                a["end_ms"],
            )


async def test_a_down_machine_gets_no_work_while_it_is_unavailable(
    database_url: str, kafka_bootstrap: str
) -> None:
    repair_s = 4 * 3600
    settings = make_settings(
        await fresh_database(database_url), kafka_bootstrap, scheduling_repair_s=repair_s
    )
    await prepare(settings)
    async with running(settings) as client:
        plant = await load_sample_plant(settings)
        run = uuid.uuid4().hex[:8]
        orders = [placed(f"d-{run}-{n}", [("frame-road", 1), ("rack-cargo", 1)]) for n in range(3)]
        await publish(settings, [(PLACED, o.order_id, o) for o in orders])
        lines = {
            f"{o.order_id}/{ln.line_no}": (ln.sku, ln.quantity) for o in orders for ln in o.lines
        }
        plan = await plan_with(client, set(lines))
        assert any(a["machine_id"] == "weld-01" for a in plan["assignments"])

        down = MachineState(
            machine_id="weld-01",
            state=MachineStateName.DOWN,
            since=plan["assignments"][0]["start_ms"],
        )
        await publish(settings, [(STATES, "weld-01", down)])
        replanned = await plan_after(client, plan["version"], what="the plan after DOWN")
        assert "machine-down" in replanned["triggers"]
        assert_feasible(replanned, plant, lines)
        until = down.since + repair_s * 1000
        on_weld = [a for a in replanned["assignments"] if a["machine_id"] == "weld-01"]
        assert on_weld, "welding has no other machine: it waits for the repair"
        assert all(a["start_ms"] >= until or a["end_ms"] <= down.since for a in on_weld)

        up = MachineState(
            machine_id="weld-01",
            state=MachineStateName.RUNNING,
            since=down.since + 60_000,
            previous=MachineStateName.DOWN,
        )
        await publish(settings, [(STATES, "weld-01", up)])
        back = await plan_after(client, replanned["version"], what="the plan after repair")
        while "machine-up" not in back["triggers"]:  # the solver's version after the quick one
            assert "machine-down" in back["triggers"]
            assert_feasible(back, plant, lines)
            back = await plan_after(client, back["version"], what="the plan after repair")
        first_weld = min(a["start_ms"] for a in back["assignments"] if a["machine_id"] == "weld-01")
        assert first_weld < until
