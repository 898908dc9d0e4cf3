"""Event handlers: translate a consumed event into state changes and re-plan triggers, inside
the unit of work the consumer opened (state, inbox and trigger commit together).

Each returns the outcome label counted in ``millrace_scheduling_consumed_total``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta

from contracts.base import Contract
from contracts.orders import OrderCancelled, OrderPlaced
from contracts.production import OperationCompleted, OperationStarted
from contracts.telemetry import MachineState
from services.scheduling.adapters.postgres import UnitOfWork
from services.scheduling.domain.state import Condition
from services.scheduling.domain.triggers import Trigger, availability_change, drifted, newer

Handler = Callable[[Contract, UnitOfWork, "Context"], Awaitable[str]]


class Context:
    """What handlers need from the settings."""

    def __init__(self, drift_s: int) -> None:
        self.drift_s = drift_s


def end_of_day(order: OrderPlaced) -> int:
    """An order is due at the end of its due date, UTC (epoch seconds)."""
    midnight = datetime.combine(order.due_date + timedelta(days=1), time(), UTC)
    return int(midnight.timestamp())


async def on_placed(event: Contract, uow: UnitOfWork, _: Context) -> str:
    assert isinstance(event, OrderPlaced)
    if not await uow.place_order(event, end_of_day(event)):
        return "already_cancelled"
    await uow.trigger(Trigger.ORDER_PLACED, event.order_id)
    return "applied"


async def on_cancelled(event: Contract, uow: UnitOfWork, _: Context) -> str:
    assert isinstance(event, OrderCancelled)
    if not await uow.cancel_order(event.order_id):
        return "not_open"
    await uow.trigger(Trigger.ORDER_CANCELLED, event.order_id)
    return "applied"


async def on_machine_state(event: Contract, uow: UnitOfWork, _: Context) -> str:
    assert isinstance(event, MachineState)
    after = Condition(event.state.value, event.since // 1000)
    await uow.log_state(event.machine_id, after)
    before = await uow.condition(event.machine_id)
    if not newer(before, after):
        return "stale"
    await uow.set_condition(event.machine_id, after)
    change = availability_change(before, after)
    if change is None:
        return "applied"
    await uow.trigger(change, event.machine_id)
    return "replan"


async def on_started(event: Contract, uow: UnitOfWork, _: Context) -> str:
    assert isinstance(event, OperationStarted)
    await uow.record_progress(
        event.work_order_id, event.operation_seq, event.machine_id, started=event.ts // 1000
    )
    return "applied"


async def on_completed(event: Contract, uow: UnitOfWork, ctx: Context) -> str:
    assert isinstance(event, OperationCompleted)
    end = event.ts // 1000
    await uow.record_progress(
        event.work_order_id,
        event.operation_seq,
        event.machine_id,
        completed=end,
        quantities=(event.quantity_good, event.quantity_scrap),
    )
    planned = await uow.planned_end(event.work_order_id, event.operation_seq)
    if not drifted(planned, end, ctx.drift_s):
        return "applied"
    await uow.trigger(Trigger.DRIFT, f"{event.work_order_id}#{event.operation_seq}")
    return "replan"


EVENTS: dict[str, tuple[type[Contract], Handler]] = {
    "orders.order-placed.v1": (OrderPlaced, on_placed),
    "orders.order-cancelled.v1": (OrderCancelled, on_cancelled),
    "telemetry.machine-states.v1": (MachineState, on_machine_state),
    "production.operation-started.v1": (OperationStarted, on_started),
    "production.operation-completed.v1": (OperationCompleted, on_completed),
}
MACHINES_TOPIC = "masterdata.machines.v1"
PRODUCTS_TOPIC = "masterdata.products.v1"
