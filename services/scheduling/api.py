"""``/v1/schedule``, ``/v1/machines/{id}/queue``, ``/v1/plans/{id}``: thin routes that read
stored plan versions; ``POST /v1/schedule/replan`` queues a trigger like any event would."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from services.scheduling.adapters import queries
from services.scheduling.adapters.postgres import PoolRef, add_trigger
from services.scheduling.adapters.snapshot import snapshot
from services.scheduling.auth import Caller, authenticator, plant_only
from services.scheduling.domain.gantt import gantt_svg
from services.scheduling.domain.model import Problem
from services.scheduling.domain.problem import Rules, machines
from services.scheduling.domain.triggers import Trigger
from services.scheduling.schemas import MACHINE_ID, PLAN_ID, PlanOut, QueueOut, ReplanOut
from services.scheduling.settings import SchedulingSettings
from shared.http_errors import error_responses


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of error ``codes`` (:func:`shared.http_errors.error_responses`)."""
    texts = {"e403": "a plant token is required", "e503": DB_DOWN, **described}
    return error_responses(*codes, **texts)


DB_DOWN = "database unavailable; retry after Retry-After seconds"


def schedule_router(settings: SchedulingSettings, db: PoolRef, rules: Rules) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["scheduling"])
    auth = Depends(authenticator(settings))
    plan_id = settings.scheduling_plan_id

    async def current() -> Any:
        head = await queries.header(db.pool, plan_id, None)
        if head is None:
            raise HTTPException(404, "no plan committed yet")
        return head

    @router.get("/schedule", responses=errors(401, 404, 503, e404="no plan committed yet"))
    async def get_schedule(caller: Caller = auth) -> PlanOut:
        """The current plan. A customer token sees only its own orders' operations."""
        head = await current()
        rows = await queries.assignments(
            db.pool, plan_id, head["version"], customer=caller.customer
        )
        return PlanOut.model_validate(queries.plan_view(head, rows))

    @router.get(
        "/schedule/gantt.svg",
        responses={
            200: {"content": {"image/svg+xml": {}}},
            **errors(401, 403, 404, 503, e404="no plan committed yet"),
        },
        response_class=Response,
    )
    async def get_gantt(caller: Caller = auth) -> Response:
        """The current plan as a Gantt chart: machines as rows, time across, a bar per
        operation coloured by order, unavailable time shaded, late operations marked."""
        plant_only(caller)
        head = await current()
        plan, orders = await queries.stored_plan(db.pool, head)
        async with db.pool.acquire() as conn:
            state, _ = await snapshot(conn, head["planned_at"], plan_id)
        problem = Problem(
            now=head["planned_at"], machines=machines(state, rules), work_orders=tuple(orders)
        )
        title = f"Plan {plan_id} v{head['version']} ({plan.status.value})"
        return Response(gantt_svg(problem, plan, title=title), media_type="image/svg+xml")

    @router.get(
        "/machines/{machine_id}/queue",
        responses=errors(401, 403, 404, 422, 503, e404="unknown machine"),
    )
    async def get_queue(
        machine_id: Annotated[str, Path(pattern=MACHINE_ID)], caller: Caller = auth
    ) -> QueueOut:
        """The machine's running and next operations in the current plan, in start order."""
        plant_only(caller)
        if not await queries.machine_known(db.pool, machine_id):
            raise HTTPException(404, "unknown machine")
        head = await queries.header(db.pool, plan_id, None)
        if head is None:
            return QueueOut(machine_id=machine_id, plan_id=None, version=None, operations=[])
        rows = await queries.assignments(
            db.pool, plan_id, head["version"], machine_id=machine_id, ending_after=int(time.time())
        )
        return QueueOut.model_validate(
            {
                "machine_id": machine_id,
                "plan_id": plan_id,
                "version": head["version"],
                "operations": rows,
            }
        )

    @router.get("/plans/{plan}", responses=errors(401, 403, 404, 422, 503, e404="no such plan"))
    async def get_plan(
        plan: Annotated[str, Path(pattern=PLAN_ID)],
        caller: Caller = auth,
        version: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    ) -> PlanOut:
        """A stored plan version (the latest without ``version``); every version is kept."""
        plant_only(caller)
        head = await queries.header(db.pool, plan, version)
        if head is None:
            raise HTTPException(404, "no such plan")
        rows = await queries.assignments(db.pool, plan, head["version"])
        return PlanOut.model_validate(queries.plan_view(head, rows))

    @router.post(
        "/schedule/replan",
        status_code=202,
        responses=errors(401, 403, 413, 503, e413="body too large (none is expected)"),
    )
    async def replan(caller: Caller = auth) -> ReplanOut:
        """Queue a re-plan (plant tokens only); it joins any re-plan already pending."""
        plant_only(caller)
        async with db.pool.acquire() as conn, conn.transaction():
            trigger_id = await add_trigger(conn, Trigger.MANUAL, caller.principal)
        return ReplanOut(trigger_id=trigger_id)

    return router
