"""Shop-floor execution contracts (ISA-95 level 3 ``JobResponse`` / EPCIS ``ObjectEvent``
with business step ``commissioning`` when an operation completes).

Key: ``work_order_id`` (``<order_id>/<line_no>``). Producers are MES, machines, or the
simulator in demos.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

from contracts.base import Contract
from contracts.types import EntityId, EpochMillis


class OperationStarted(Contract):
    """``production.operation-started.v1``: an operation of a work order began on a machine
    at ``ts`` (event time, epoch ms)."""

    work_order_id: EntityId
    order_id: EntityId
    line_no: Annotated[StrictInt, Field(ge=1)]
    operation_seq: Annotated[StrictInt, Field(ge=1)]
    machine_id: EntityId
    ts: EpochMillis


class OperationCompleted(Contract):
    """``production.operation-completed.v1``: an operation finished at ``ts``.

    ``quantity_good`` and ``quantity_scrap`` count units (ISA-95 ``ProductionResponse``
    actual quantities); ``lot_ids`` name the material lots consumed (traceability).
    """

    work_order_id: EntityId
    order_id: EntityId
    line_no: Annotated[StrictInt, Field(ge=1)]
    operation_seq: Annotated[StrictInt, Field(ge=1)]
    machine_id: EntityId
    ts: EpochMillis
    quantity_good: Annotated[StrictInt, Field(ge=0)] = 0
    quantity_scrap: Annotated[StrictInt, Field(ge=0)] = 0
    lot_ids: list[EntityId] = []
