"""Wiring of the scheduling service: the API, ops endpoints, and the supervised background
loops of :mod:`.loops` (consumer, re-planner, OEE reporter, outbox relay, retention)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.scheduling import metrics as m
from services.scheduling.adapters.planner import Solve
from services.scheduling.adapters.postgres import SCHEMA, PoolRef
from services.scheduling.api import schedule_router
from services.scheduling.config import rules_of
from services.scheduling.domain.solver import solve
from services.scheduling.loops import Loops
from services.scheduling.settings import SchedulingSettings
from shared.db import create_pool, db_ready
from shared.http import docs_urls, install_http, mount_ops
from shared.kafka import kafka_ready
from shared.logging import get_logger
from shared.migrations import migrate_pool
from shared.supervise import Supervisor

log = get_logger(__name__)
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def supervisors(names: list[str]) -> dict[str, Supervisor]:
    """One per background loop, its restarts counted by task; a loop that keeps failing soon
    after each start makes the service not ready (see :func:`create_app`'s checks)."""
    return {name: Supervisor(name, failures=m.FAILURES.labels(name)) for name in names}


def healthy(loops: dict[str, Supervisor], name: str) -> bool:
    """False for a loop that is not (yet) supervised, and for one that is crash-looping."""
    supervisor = loops.get(name)
    return supervisor is not None and supervisor.healthy


def create_app(settings: SchedulingSettings, *, solver: Solve = solve) -> FastAPI:
    """The ASGI app; tests may pass another solve function with the same signature."""
    ref = PoolRef()
    stop = asyncio.Event()
    live: set[str] = set()
    rules = rules_of(settings)
    loops: dict[str, Supervisor] = {}  # the enabled loops' supervisors, once started

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        ref.set(pool)
        await migrate_pool(pool, SCHEMA, "services.scheduling.migrations")
        enabled = Loops(settings, pool, stop, live, solver=solver, rules=rules).enabled()
        loops.update(supervisors([name for name, _ in enabled]))
        tasks = [asyncio.create_task(loops[name].run(stop, body)) for name, body in enabled]
        if not settings.scheduling_tokens:
            log.warning("no MILLRACE_SCHEDULING_TOKENS configured: every API request is refused")
        log.info("scheduling started", http_port=settings.http_port, loops=[n for n, _ in enabled])
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
        **docs_urls(settings.ops_port),
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
        """Ready when the loop is off, or registered as running and not crash-looping."""

        async def check() -> bool:
            return not enabled or (name in live and healthy(loops, name))

        return check

    async def relay_check() -> bool:
        return not settings.scheduling_relay_enabled or healthy(loops, "relay")

    async def kafka_check() -> bool:
        return await kafka_ready(settings)

    async def db_check() -> bool:
        return await db_ready(ref.pool)

    checks = {
        "kafka": kafka_check,
        "postgres": db_check,
        "consumer": running("consumer", settings.scheduling_consumer_enabled),
        "planner": running("planner", settings.scheduling_planner_enabled),
        "relay": relay_check,
    }
    mount_ops(app, checks, settings.ops_port)
    app.include_router(schedule_router(settings, ref, rules))
    install_http(
        app,
        max_body_bytes=settings.scheduling_max_body_bytes,
        requests=m.REQUESTS,
        latency=m.HTTP_LATENCY,
    )
    return app
