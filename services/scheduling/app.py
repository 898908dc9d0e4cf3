"""Wiring of the scheduling service: the API, ops endpoints, and the supervised background
loops of :mod:`.loops` (consumer, re-planner, OEE reporter, outbox relay, retention)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.scheduling import metrics as m
from services.scheduling.adapters.planner import Solve
from services.scheduling.adapters.postgres import SCHEMA, PoolRef
from services.scheduling.api import schedule_router
from services.scheduling.config import rules_of
from services.scheduling.domain.solver import solve
from services.scheduling.loops import Loops, supervise
from services.scheduling.settings import SchedulingSettings
from shared.db import create_pool, db_ready
from shared.http import install_body_limit, ops_router
from shared.kafka import kafka_ready
from shared.logging import get_logger
from shared.migrations import migrate_pool

log = get_logger(__name__)
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class CountRequests:
    """Count responses by route template (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                m.REQUESTS.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)


def create_app(settings: SchedulingSettings, *, solver: Solve = solve) -> FastAPI:
    """The ASGI app; tests may pass another solve function with the same signature."""
    ref = PoolRef()
    stop = asyncio.Event()
    live: set[str] = set()
    rules = rules_of(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        ref.set(pool)
        await migrate_pool(pool, SCHEMA, "services.scheduling.migrations")
        loops = Loops(settings, pool, stop, live, solver=solver, rules=rules).enabled()
        tasks = [asyncio.create_task(supervise(name, stop, body)) for name, body in loops]
        if not settings.scheduling_tokens:
            log.warning("no MILLRACE_SCHEDULING_TOKENS configured: every API request is refused")
        log.info("scheduling started", http_port=settings.http_port, loops=[n for n, _ in loops])
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            ref.set(None)
            await pool.close()
            log.info("scheduling stopped")

    app = FastAPI(
        title="Millrace scheduling",
        version="0.1.0",
        description="Production plans from orders, routings, machine states and shop-floor "
        "progress; re-planned when they change.",
        lifespan=lifespan,
    )

    @app.exception_handler(DB_ERRORS[0])
    @app.exception_handler(DB_ERRORS[1])
    @app.exception_handler(OSError)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=repr(exc))
        return JSONResponse(
            {"detail": "database unavailable; retry"}, status_code=503, headers={"Retry-After": "1"}
        )

    def running(name: str, enabled: bool) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return not enabled or name in live

        return check

    async def kafka_check() -> bool:
        return await kafka_ready(settings)

    async def db_check() -> bool:
        return await db_ready(ref.pool)

    checks = {
        "kafka": kafka_check,
        "postgres": db_check,
        "consumer": running("consumer", settings.scheduling_consumer_enabled),
        "planner": running("planner", settings.scheduling_planner_enabled),
    }
    app.include_router(ops_router(checks))
    app.include_router(schedule_router(settings, ref, rules))
    install_body_limit(app, settings.scheduling_max_body_bytes)
    app.add_middleware(CountRequests)
    return app
