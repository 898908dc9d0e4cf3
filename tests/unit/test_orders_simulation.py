"""The simulated customer only places orders the intake accepts, and the simulated shop floor
plays every operation of every line once, scheduled before started before completed."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path

from contracts.orders import OrderPlaced, OrderStatus, Priority
from millrace.masterdata.plant import load_plant
from millrace.simulator.shopfloor import operation_events, order_request
from services.orders.domain.intake import RequestedLine, resolve_lines
from services.orders.domain.order import place

PLANT = load_plant(Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml")
PRODUCTS = {p.sku: p for p in PLANT.products}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_generated_orders_pass_intake_and_complete_when_played() -> None:
    rng = random.Random(7)
    for _ in range(50):
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
        events = operation_events(placed, PRODUCTS, PLANT, 0, 1000)
        assert len(events) == 3 * sum(line.operations for line in lines)
        kinds = {"scheduling.operation-scheduled.v1": "scheduled"}
        kinds |= {"production.operation-started.v1": "started"}
        kinds |= {"production.operation-completed.v1": "completed"}
        for topic, event in events:
            order.observe(kinds[topic], event.line_no, event.operation_seq, NOW, topic)  # type: ignore[attr-defined]
        assert order.status is OrderStatus.COMPLETED
