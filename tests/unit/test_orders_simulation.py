"""The simulated customer only places orders the intake accepts, and the simulated shop floor,
given a plan of every operation, starts and completes each one so the order completes."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

from contracts.orders import OrderPlaced, OrderStatus, Priority
from contracts.production import OperationStarted
from contracts.scheduling import OperationScheduled
from millrace.masterdata.plant import Plant, load_plant
from millrace.simulator.customer import order_request
from millrace.simulator.floor import Floor
from services.orders.domain.intake import RequestedLine, resolve_lines
from services.orders.domain.order import Order, place

PLANT = load_plant(Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml")
PRODUCTS = {p.sku: p for p in PLANT.products}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def naive_plan(placed: OrderPlaced, plant: Plant, start_ms: int) -> list[OperationScheduled]:
    """Every operation back to back on the first capable machine: a scheduler stand-in."""
    out, t = [], start_ms
    for line in placed.lines:
        for op in PRODUCTS[line.sku].routing:
            machine = next(m for m in plant.machines if op.capability in m.capabilities)
            out.append(
                OperationScheduled(
                    work_order_id=f"{placed.order_id}/{line.line_no}", order_id=placed.order_id,
                    line_no=line.line_no, sku=line.sku, operation_seq=op.seq,
                    machine_id=machine.machine_id, planned_start=t, planned_end=t + 1_000,
                )
            )  # fmt: skip
            t += 1_000
    return out


def placed_order(rng: random.Random) -> tuple[Order, OrderPlaced]:
    body = order_request(PLANT, rng, NOW)
    requested = [RequestedLine(x["sku"], x["quantity"], x["options"]) for x in body["lines"]]
    lines, currency = resolve_lines(
        requested, PRODUCTS, date.fromisoformat(body["due_date"]), NOW.date()
    )
    order = place(
        order_id="o-1",
        customer=body["customer"],
        lines=lines,
        due_date=date.fromisoformat(body["due_date"]),
        priority=Priority(body["priority"]),
        currency=currency,
        at=NOW,
    )
    placed = order.events[0]
    assert isinstance(placed, OrderPlaced)
    return order, placed


def test_generated_orders_pass_intake_and_complete_when_the_floor_executes_the_plan() -> None:
    rng = random.Random(7)
    routings = {p.sku: tuple(op.seq for op in p.routing) for p in PLANT.products}
    for _ in range(50):
        order, placed = placed_order(rng)
        floor = Floor([m.machine_id for m in PLANT.machines], routings)
        plan = naive_plan(placed, PLANT, 0)
        for op in plan:
            floor.schedule(op)
            order.observe("scheduled", op.line_no, op.operation_seq, NOW, "scheduled")
        for line in placed.lines:
            floor.set_quantity(f"{placed.order_id}/{line.line_no}", line.quantity)
        events = [e for t in range(0, len(plan) * 1_000 + 1, 500) for e in floor.step(t)]
        assert len(events) == 2 * len(plan)
        for e in events:
            kind = "started" if isinstance(e, OperationStarted) else "completed"
            order.observe(kind, e.line_no, e.operation_seq, NOW, kind)
        assert order.status is OrderStatus.COMPLETED
