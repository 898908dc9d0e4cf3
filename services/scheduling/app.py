"""Wiring of the scheduling service: the API, ops endpoints, and supervised background loops
(the consumer, the re-planner, the OEE reporter, the outbox relay and retention), each rebuilt
with backoff after an error."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.scheduling import metrics as m
from services.scheduling.adapters.consumer import TOPICS, SchedulingConsumer
from services.scheduling.adapters.oee import OeeReporter
from services.scheduling.adapters.planner import Planner, Solve
from services.scheduling.adapters.postgres import SCHEMA, PoolRef
from services.scheduling.adapters.prune import prune_loop, retention
from services.scheduling.adapters.relay import OutboxRelay
from services.scheduling.api import schedule_router
from services.scheduling.config import rules_of
from services.scheduling.domain.solver import solve
from services.scheduling.handlers import EVENTS, Context
from services.scheduling.settings import SchedulingSettings
from shared.db import create_pool, db_ready
from shared.dlq import DlqPublisher
from shared.http import install_body_limit, ops_router
from shared.kafka import kafka_ready, make_consumer, make_producer
from shared.logging import get_logger
from shared.migrations import migrate_pool

log = get_logger(__name__)
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


async def supervise(name: str, stop: asyncio.Event, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` until ``stop``; after an error (an outage) run it again, with capped
    exponential backoff. Work resumes from durable state: nothing is skipped."""
    backoff = 0.5
    while not stop.is_set():
        try:
            await body()
            backoff = 0.5
        except Exception as exc:
            m.FAILURES.labels(name).inc()
            log.exception(f"{name} failed; restarting", error=repr(exc), backoff_s=backoff)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 15.0)


async def relay_loop(settings: SchedulingSettings, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    producer = make_producer(settings, role="outbox-relay")
    await producer.start()
    try:
        relay = OutboxRelay(
            pool,
            producer,
            batch=settings.scheduling_relay_batch,
            poll_s=settings.scheduling_relay_poll_ms / 1000,
        )
        await relay.run(stop)
    finally:
        await producer.stop()


async def consumer_loop(
    settings: SchedulingSettings, pool: asyncpg.Pool, stop: asyncio.Event, live: set[str]
) -> None:
    consumer = make_consumer(settings, *TOPICS, group_id=settings.scheduling_consumer_group)
    producer = make_producer(settings, role="dlq")
    await producer.start()
    await consumer.start()
    try:
        worker = SchedulingConsumer(
            pool,
            consumer,
            DlqPublisher(producer, settings.service_name),
            Context(settings.scheduling_replan_drift_s),
        )
        live.add("consumer")
        await worker.run(stop)
    finally:
        live.discard("consumer")
        with contextlib.suppress(Exception):
            await consumer.stop()
        await producer.stop()


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

    def planner(pool: asyncpg.Pool) -> Planner:
        return Planner(
            pool,
            solver,
            rules,
            plan_id=settings.scheduling_plan_id,
            time_limit_s=settings.scheduling_time_limit_s,
            workers=settings.scheduling_workers,
            coalesce_s=settings.scheduling_coalesce_ms / 1000,
        )

    def oee_reporter(pool: asyncpg.Pool) -> OeeReporter:
        return OeeReporter(
            pool,
            rules,
            period_s=settings.scheduling_oee_period_s,
            grace_s=settings.scheduling_oee_grace_s,
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        ref.set(pool)
        await migrate_pool(pool, SCHEMA, "services.scheduling.migrations")
        loops: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if settings.scheduling_relay_enabled:
            loops.append(("relay", lambda: relay_loop(settings, pool, stop)))
        if settings.scheduling_consumer_enabled:
            loops.append(("consumer", lambda: consumer_loop(settings, pool, stop, live)))
        if settings.scheduling_planner_enabled:
            loops.append(("planner", lambda: planner(pool).run(stop)))
        if settings.scheduling_oee_enabled:
            loops.append(("oee", lambda: oee_reporter(pool).run(stop)))
        if settings.scheduling_prune_interval_ms:
            policy = retention(
                settings.scheduling_outbox_keep_ms, EVENTS, settings.scheduling_plans_keep
            )
            interval = settings.scheduling_prune_interval_ms / 1000
            plan_id = settings.scheduling_plan_id
            loops.append(("prune", lambda: prune_loop(pool, policy, plan_id, interval, stop)))
        tasks = [asyncio.create_task(supervise(name, stop, body)) for name, body in loops]
        if not settings.scheduling_tokens:
            log.warning("no MILLRACE_SCHEDULING_TOKENS configured: every API request is refused")
        log.info("scheduling started", http_port=settings.http_port, started=time.time())
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

    async def consumer_check() -> bool:
        return not settings.scheduling_consumer_enabled or "consumer" in live

    async def kafka_check() -> bool:
        return await kafka_ready(settings)

    async def db_check() -> bool:
        return await db_ready(ref.pool)

    app.include_router(
        ops_router({"kafka": kafka_check, "postgres": db_check, "consumer": consumer_check})
    )
    app.include_router(schedule_router(settings, ref, rules))
    install_body_limit(app, settings.scheduling_max_body_bytes)
    app.add_middleware(CountRequests)
    return app
