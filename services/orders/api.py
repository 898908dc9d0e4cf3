"""``/v1/orders``: thin routes. Each parses, checks who may see what, calls the domain in a
unit of work, and answers. Idempotency: a key is scoped to the caller; the same key with the
same body returns the order it created, with another body 409."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response

from services.orders import headers
from services.orders import metrics as m
from services.orders.adapters import queries
from services.orders.adapters.postgres import PoolRef, UnitOfWork, insert_order
from services.orders.auth import Caller, authenticator
from services.orders.domain.intake import IntakeError, RequestedLine, resolve_request
from services.orders.domain.order import TransitionNotAllowedError, place
from services.orders.domain.request import RequestDigest, request_digest
from services.orders.schemas import (
    ORDER_ID,
    PLACE_RESPONSES,
    CancelIn,
    ListQuery,
    OrderIn,
    OrderOut,
    OrderPage,
    errors,
)
from services.orders.settings import OrdersSettings

OrderId = Annotated[str, Path(pattern=ORDER_ID)]


async def visible(pool: asyncpg.Pool, order_id: str, caller: Caller) -> dict[str, Any]:
    """The order as the caller may see it; 404 alike for missing and for someone else's."""
    view = await queries.order_view(pool, order_id)
    if view is None or not caller.may_see(view["customer"]):
        raise HTTPException(404, "order not found")
    return view


async def replay(
    pool: asyncpg.Pool, caller: Caller, key: str, digest: RequestDigest, response: Response
) -> OrderOut | None:
    """The order an idempotency key already created (200), 409 for another body, or None."""
    found = await queries.find_by_key(pool, caller.principal, key)
    if found is None:
        return None
    order_id, stored = found
    if not digest.matches(stored):
        m.REPLAYS.labels("conflict").inc()
        raise HTTPException(409, "Idempotency-Key already used with a different body")
    m.REPLAYS.labels("same").inc()
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return OrderOut.model_validate(await visible(pool, order_id, caller))


async def transition(
    pool: asyncpg.Pool, order_id: str, caller: Caller, action: str, reason: str = ""
) -> OrderOut:
    """Cancel or ship under the order's row lock; 409 when the state does not allow it."""
    await visible(pool, order_id, caller)
    async with UnitOfWork(pool) as uow:
        order = await uow.get(order_id)
        if order is None:
            raise HTTPException(404, "order not found")
        try:
            if action == "cancel":
                order.cancel(reason, datetime.now(UTC))
            else:
                order.ship(datetime.now(UTC))
        except TransitionNotAllowedError as err:
            raise HTTPException(409, str(err)) from err
        await uow.save(order)
        await uow.commit()
    return OrderOut.model_validate(await visible(pool, order_id, caller))


def orders_router(settings: OrdersSettings, db: PoolRef) -> APIRouter:
    router = APIRouter(prefix="/v1/orders", tags=["orders"])
    auth = Depends(authenticator(settings))
    idempotency = Depends(headers.idempotency_key)

    @router.post(
        "",
        status_code=201,
        responses=PLACE_RESPONSES,
        openapi_extra=headers.OPENAPI,
    )
    async def post_order(
        body: OrderIn,
        response: Response,
        caller: Caller = auth,
        idempotency_key: str = idempotency,
    ) -> OrderOut:
        """Place an order. ``Idempotency-Key`` is required; retry with the same key and body."""
        customer = body.customer or caller.customer
        if customer is None:
            raise HTTPException(422, "customer: required with a plant token")
        if not caller.may_see(customer):
            raise HTTPException(403, "this token may only place its own customer's orders")
        if len(body.lines) > settings.orders_max_lines:
            raise HTTPException(422, f"lines: at most {settings.orders_max_lines}")
        now = datetime.now(UTC)
        requested = [RequestedLine(ln.sku, ln.quantity, ln.options) for ln in body.lines]
        catalogue = await queries.products(db.pool, {ln.sku for ln in body.lines})
        digest = request_digest(
            customer=customer,
            requested=requested,
            products=catalogue,
            due_date=body.due_date,
            priority=body.priority,
            raw_body=body.model_dump(mode="json"),
        )
        if (done := await replay(db.pool, caller, idempotency_key, digest, response)) is not None:
            return done
        try:
            lines, currency = resolve_request(
                customer_id=customer,
                customer=await queries.customer(db.pool, customer),
                requested=requested,
                products=catalogue,
                due_date=body.due_date,
                today=now.date(),
                max_due_days=settings.orders_max_due_days,
            )
        except IntakeError as err:
            raise HTTPException(422, err.problems) from err
        order = place(
            order_id=str(uuid.uuid4()),
            customer=customer,
            lines=lines,
            due_date=body.due_date,
            priority=body.priority,
            currency=currency,
            at=now,
        )
        created_view = queries.new_order_view(order)
        created = await insert_order(
            db.pool, order, caller.principal, idempotency_key, digest.resolved
        )
        if not created:
            done = await replay(db.pool, caller, idempotency_key, digest, response)
            assert done is not None
            return done
        m.PLACED.inc()
        return OrderOut.model_validate(created_view)

    @router.get("/{order_id}", responses=errors(401, 404, 422, 503))
    async def get_order(order_id: OrderId, caller: Caller = auth) -> OrderOut:
        """The order's status and the timeline of what happened to it."""
        return OrderOut.model_validate(await visible(db.pool, order_id, caller))

    @router.get("", responses=errors(401, 422, 503))
    async def list_orders(
        query: Annotated[ListQuery, Query()],
        caller: Caller = auth,
    ) -> OrderPage:
        """Orders oldest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
        customer, status, cursor, limit = query.customer, query.status, query.cursor, query.limit
        if caller.customer is not None:
            if customer not in (None, caller.customer):
                return OrderPage(orders=[], next_cursor=None)
            customer = caller.customer
        try:
            after = queries.decode_cursor(cursor) if cursor else 0
        except ValueError as err:
            raise HTTPException(422, "cursor: invalid") from err
        rows, nxt = await queries.list_orders(
            db.pool,
            customer=customer,
            status=status.value if status else None,
            after=after,
            limit=min(limit, settings.orders_page_max),
        )
        return OrderPage(orders=[OrderOut.model_validate(r) for r in rows], next_cursor=nxt)

    @router.post(
        "/{order_id}/cancel",
        responses=errors(400, 401, 404, 409, 413, 422, 503, e409="too late to cancel"),
    )
    async def cancel_order(
        order_id: OrderId, caller: Caller = auth, body: CancelIn | None = None
    ) -> OrderOut:
        """Cancel an order before production starts; 409 once it no longer can be."""
        return await transition(db.pool, order_id, caller, "cancel", (body or CancelIn()).reason)

    @router.post(
        "/{order_id}/ship",
        responses=errors(
            401,
            403,
            404,
            409,
            413,
            422,
            503,
            e403="only a plant token may ship",
            e409="not completed",
        ),
    )
    async def ship_order(order_id: OrderId, caller: Caller = auth) -> OrderOut:
        """Confirm dispatch of a completed order (plant tokens only)."""
        if caller.customer is not None:
            raise HTTPException(403, "only a plant token may ship")
        return await transition(db.pool, order_id, caller, "ship")

    return router


def noop_router(settings: OrdersSettings) -> APIRouter:
    """``POST /v1/noop``, the framework ceiling for ``make bench-orders``: the same app, auth
    and body parsing as ``POST /v1/orders``, but no database and no Kafka."""
    router = APIRouter()
    auth = Depends(authenticator(settings))

    @router.post("/v1/noop", include_in_schema=False)
    async def noop(body: OrderIn, caller: Caller = auth) -> dict[str, str]:
        return {"customer": body.customer or caller.customer or ""}

    return router
