"""Scheduling handlers against an in-memory unit of work: which events change state and which
of them ask for a re-plan."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from contracts.orders import OrderCancelled, OrderLine, OrderPlaced, OrderStatus, Priority
from contracts.production import OperationCompleted
from contracts.telemetry import MachineState, MachineStateName
from services.scheduling.domain.state import Condition, Progress
from services.scheduling.handlers import (
    Context,
    end_of_day,
    on_cancelled,
    on_completed,
    on_machine_state,
    on_placed,
)


class FakeUow:
    def __init__(self) -> None:
        self.orders: dict[str, dict[str, bool]] = {}
        self.conditions: dict[str, Condition] = {}
        self.progress: dict[tuple[str, int], Progress] = {}
        self.planned: dict[tuple[str, int], int] = {}
        self.triggers: list[tuple[str, str]] = []
        self.quantities: dict[tuple[str, int], Any] = {}
        self.log: list[tuple[str, Condition]] = []

    async def place_order(self, order: OrderPlaced, due: int) -> bool:
        row = self.orders.setdefault(order.order_id, {"placed": False, "cancelled": False})
        row["placed"] = True
        return not row["cancelled"]

    async def cancel_order(self, order_id: str) -> bool:
        row = self.orders.setdefault(order_id, {"placed": False, "cancelled": False})
        was_open = row["placed"] and not row["cancelled"]
        row["cancelled"] = True
        return was_open

    async def condition(self, machine_id: str) -> Condition | None:
        return self.conditions.get(machine_id)

    async def set_condition(self, machine_id: str, condition: Condition) -> None:
        self.conditions[machine_id] = condition

    async def record_progress(self, wo: str, seq: int, machine: str, **kw: Any) -> None:
        self.progress[(wo, seq)] = Progress(machine, kw.get("started"), kw.get("completed"))
        self.quantities[(wo, seq)] = kw.get("quantities")

    async def log_state(self, machine_id: str, condition: Condition) -> None:
        self.log.append((machine_id, condition))

    async def planned_end(self, wo: str, seq: int) -> int | None:
        return self.planned.get((wo, seq))

    async def trigger(self, kind: str, detail: str = "") -> None:
        self.triggers.append((str(kind), detail))


CTX = Context(drift_s=600)
AT = datetime(2027, 1, 4, 8, tzinfo=UTC)


def order(order_id: str = "o1") -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer="acme",
        lines=[OrderLine(line_no=1, sku="stem-cnc", quantity=2, operations=3)],
        due_date=date(2027, 1, 8),
        priority=Priority.RUSH,
        status=OrderStatus.ACCEPTED,
        total_minor=0,
        currency="EUR",
        placed_at=AT,
    )


def state(name: MachineStateName, since_s: int) -> MachineState:
    return MachineState(machine_id="saw-01", state=name, since=since_s * 1000)


def test_an_order_is_due_at_the_end_of_its_due_date_utc() -> None:
    assert end_of_day(order()) == int(datetime(2027, 1, 9, tzinfo=UTC).timestamp())


async def test_placing_and_cancelling_trigger_but_a_cancelled_order_stays_out() -> None:
    uow = FakeUow()
    assert await on_placed(order(), uow, CTX) == "applied"  # type: ignore[arg-type]
    cancel = OrderCancelled(order_id="o1", customer="acme", cancelled_at=AT)
    assert await on_cancelled(cancel, uow, CTX) == "applied"  # type: ignore[arg-type]
    assert uow.triggers == [("order-placed", "o1"), ("order-cancelled", "o1")]
    # cancelled first, placed later (another topic's record arrived first)
    early = OrderCancelled(order_id="o2", customer="acme", cancelled_at=AT)
    assert await on_cancelled(early, uow, CTX) == "not_open"  # type: ignore[arg-type]
    assert await on_placed(order("o2"), uow, CTX) == "already_cancelled"  # type: ignore[arg-type]
    assert len(uow.triggers) == 2


async def test_machine_states_trigger_only_on_availability_changes_and_never_backwards() -> None:
    uow = FakeUow()
    outcomes = [
        await on_machine_state(state(name, since), uow, CTX)  # type: ignore[arg-type]
        for name, since in (
            (MachineStateName.RUNNING, 100),
            (MachineStateName.DOWN, 200),
            (MachineStateName.RUNNING, 150),  # older than the DOWN: ignored
            (MachineStateName.MAINTENANCE, 250),
            (MachineStateName.IDLE, 300),
        )
    ]
    assert outcomes == ["applied", "replan", "stale", "applied", "replan"]
    assert [k for k, _ in uow.triggers] == ["machine-down", "machine-up"]
    assert uow.conditions["saw-01"] == Condition("IDLE", 300)
    assert len(uow.log) == 5  # every change is kept for OEE, the stale one too


async def test_a_completion_far_from_its_planned_end_triggers_a_replan() -> None:
    uow = FakeUow()
    uow.planned[("o1/1", 10)] = 10_000

    def done(ts_s: int) -> OperationCompleted:
        return OperationCompleted(
            work_order_id="o1/1",
            order_id="o1",
            line_no=1,
            operation_seq=10,
            machine_id="saw-01",
            ts=ts_s * 1000,
            quantity_good=2,
            quantity_scrap=1,
        )

    assert await on_completed(done(10_599), uow, CTX) == "applied"  # type: ignore[arg-type]
    assert await on_completed(done(9_400), uow, CTX) == "replan"  # type: ignore[arg-type]
    assert uow.triggers == [("drift", "o1/1#10")]
    assert uow.progress[("o1/1", 10)] == Progress("saw-01", None, 9_400)
    assert uow.quantities[("o1/1", 10)] == (2, 1)
