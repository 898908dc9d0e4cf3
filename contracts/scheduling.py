"""Scheduling contracts the order lifecycle depends on.

A *work order* (ISA-95 ``JobOrder``) produces one order line; its id is
``<order_id>/<line_no>``. Events are keyed by work order id, so the events of one work order
stay ordered; consumers still tolerate any arrival order across topics.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from contracts.base import Contract
from contracts.types import EntityId, EpochMillis


class OperationScheduled(Contract):
    """``scheduling.operation-scheduled.v1``: operation ``operation_seq`` of a work order was
    planned on ``machine_id`` for ``[planned_start, planned_end)`` (epoch ms).

    Key: ``work_order_id``. A re-plan publishes the same operation again with new times.
    """

    work_order_id: EntityId
    order_id: EntityId
    line_no: Annotated[StrictInt, Field(ge=1)]
    sku: EntityId
    operation_seq: Annotated[StrictInt, Field(ge=1)]
    machine_id: EntityId
    planned_start: EpochMillis
    planned_end: EpochMillis
    plan_id: EntityId | None = None
