"""The plant fleet is the plant's machines with their metrics, and the sample rules read its
signals right: RUNNING while a machine works, IDLE while it waits, DOWN once it is broken."""

from __future__ import annotations

from pathlib import Path

from contracts.scheduling import OperationScheduled
from millrace.masterdata.plant import load_plant
from millrace.simulator.floor import Floor
from millrace.simulator.plant_fleet import PlantFleet
from millrace.simulator.plant_signals import CATALOGUE
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.rules.book import load_rules
from services.telemetry.states.instance import StateChange

ROOT = Path(__file__).resolve().parents[2]
PLANT = load_plant(ROOT / "deploy" / "local" / "plant.yaml")
RULES = load_rules(ROOT / "deploy" / "local" / "alarm-rules.yaml")
T0 = 1_800_000_000_000


def plant_floor() -> Floor:
    routings = {p.sku: tuple(op.seq for op in p.routing) for p in PLANT.products}
    return Floor([m.machine_id for m in PLANT.machines], routings)


def test_the_fleet_is_the_plant_with_its_metrics_and_every_metric_has_a_model() -> None:
    fleet = PlantFleet(PLANT, seed=1)
    batches = {m.device_id: m.batch for m in fleet.tick(T0)}
    assert set(batches) == {m.machine_id for m in PLANT.machines}
    for machine in PLANT.machines:
        assert [r["metric"] for r in batches[machine.machine_id]["readings"]] == machine.metrics
        assert set(machine.metrics) <= set(CATALOGUE)
    assert all(r["ts"] == T0 for b in batches.values() for r in b["readings"])


def test_the_same_seed_gives_the_same_readings() -> None:
    a, b = PlantFleet(PLANT, seed=4), PlantFleet(PLANT, seed=4)
    for t in range(5):
        assert [m.batch for m in a.tick(T0 + t * 1000)] == [m.batch for m in b.tick(T0 + t * 1000)]


def states_over(fleet: PlantFleet, seconds: range) -> dict[str, str]:
    """Feed the fleet's readings to telemetry's engine; the last state of each machine."""
    engine = PartitionEngine(RULES)
    latest: dict[str, str] = {}
    offset = 0
    for s in seconds:
        now = T0 + s * 1000
        for message in fleet.tick(now):
            for r in message.batch["readings"]:
                if r["metric"] in RULES.metrics:
                    engine.observe(message.device_id, r["metric"], r["ts"], r["value"], offset)
                    offset += 1
        engine.advance(now)
        for event in engine.drain():
            if isinstance(event, StateChange):
                latest[event.machine_id] = event.state.value
    return latest


def test_the_sample_rules_read_running_idle_and_down_from_the_plant_signals() -> None:
    floor = plant_floor()
    for machine in ("saw-01", "paint-01", "press-01"):
        floor.schedule(
            OperationScheduled(
                work_order_id="o-1/1", order_id="o-1", line_no=1, sku="custom",
                operation_seq=10 if machine == "saw-01" else 20 if machine == "press-01" else 30,
                machine_id=machine, planned_start=T0, planned_end=T0 + 600_000,
            )
        )  # fmt: skip
    floor.set_quantity("o-1/1", 1)
    floor.step(T0)
    assert {m for m in floor.jobs if floor.working(m)} == {"saw-01", "paint-01", "press-01"}
    floor.break_machine("cnc-01", T0, repair_ms=600_000)
    states = states_over(PlantFleet(PLANT, seed=1, floor=floor), range(0, 60))
    assert states["saw-01"] == "RUNNING"
    assert states["paint-01"] == "RUNNING"  # the oven heats up within a minute
    assert states["press-01"] == "RUNNING"
    assert states.get("cnc-01") in (None, "DOWN")
    idle = {m.machine_id for m in PLANT.machines} - {"saw-01", "paint-01", "press-01", "cnc-01"}
    assert {states[m] for m in idle} == {"IDLE"}


def test_a_broken_machine_goes_silent_and_then_down() -> None:
    floor = plant_floor()
    fleet = PlantFleet(PLANT, seed=1, floor=floor)
    engine_states = states_over(fleet, range(0, 10))
    assert engine_states["cnc-02"] == "IDLE"
    floor.break_machine("cnc-02", T0 + 10_000, repair_ms=60_000)
    assert "cnc-02" not in {m.device_id for m in fleet.tick(T0 + 11_000)}
    engine = PartitionEngine(RULES)
    changes: list[StateChange] = []
    for s in range(0, 40):
        now = T0 + s * 1000
        if s == 10:
            floor.break_machine("cnc-01", now, repair_ms=60_000)
        for i, message in enumerate(fleet.tick(now)):
            for r in message.batch["readings"]:
                if r["metric"] in RULES.metrics:
                    engine.observe(message.device_id, r["metric"], r["ts"], r["value"], s * 100 + i)
        changes += [e for e in engine.drain() if isinstance(e, StateChange)]
    cnc = [(c.state.value, c.since) for c in changes if c.machine_id == "cnc-01"]
    assert cnc[0][0] == "IDLE"
    assert cnc[-1] == ("DOWN", T0 + 9_000 + 15_000)  # its last reading plus down_after
