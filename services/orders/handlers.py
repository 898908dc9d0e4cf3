"""Event handlers: translate a consumed event into a call on the aggregate, inside a unit of
work that the consumer opened (so state, inbox and outbox commit together)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from contracts.base import Contract
from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled
from services.orders.adapters.postgres import UnitOfWork

Handler = Callable[[Contract, str, UnitOfWork], Awaitable[str]]


def _millis(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, tz=UTC)


async def on_operation(event: Contract, topic: str, uow: UnitOfWork) -> str:
    """Record a scheduling or production fact on its order; return the outcome label."""
    if isinstance(event, OperationScheduled):
        fact, at = "scheduled", _millis(event.planned_start)
    elif isinstance(event, OperationStarted):
        fact, at = "started", _millis(event.ts)
    else:
        assert isinstance(event, OperationCompleted)
        fact, at = "completed", _millis(event.ts)
    order = await uow.get(event.order_id)
    if order is None:
        return "unknown_order"
    order.observe(fact, event.line_no, event.operation_seq, at, topic)
    await uow.save(order)
    return "applied"


LIFECYCLE: dict[str, tuple[type[Contract], Handler]] = {
    "scheduling.operation-scheduled.v1": (OperationScheduled, on_operation),
    "production.operation-started.v1": (OperationStarted, on_operation),
    "production.operation-completed.v1": (OperationCompleted, on_operation),
}
PRODUCTS_TOPIC = "masterdata.products.v1"
CUSTOMERS_TOPIC = "masterdata.customers.v1"
