"""Wiring of the orders service: the API, ops endpoints, and two supervised background loops
(the outbox relay and the lifecycle consumer), each rebuilt with backoff after an error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.orders import metrics as m
from services.orders.adapters.consumer import TOPICS, LifecycleConsumer
from services.orders.adapters.postgres import SCHEMA, PoolRef
from services.orders.adapters.prune import prune_loop, retention
from services.orders.adapters.relay import OutboxRelay
from services.orders.api import noop_router, orders_router
from services.orders.handlers import LIFECYCLE
from services.orders.settings import OrdersSettings
from shared.db import create_pool, db_ready
from shared.dlq import DlqPublisher
from shared.http import docs_urls, install_http, mount_ops
from shared.kafka import kafka_ready, make_consumer, make_producer
from shared.logging import get_logger
from shared.migrations import migrate_pool
from shared.supervise import Supervisor

log = get_logger(__name__)
Hook = Callable[[], Awaitable[None]]
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def _nothing() -> None:
    return None


FAILURES = {"consumer": m.CONSUMER_RESTARTS, "relay": m.RELAY_ERRORS, "prune": m.PRUNE_ERRORS}


def supervisors() -> dict[str, Supervisor]:
    """One per background loop: each restarts its loop after an error, with capped backoff,
    and the relay's and the consumer's verdicts are readiness checks."""
    return {name: Supervisor(name, failures=counter) for name, counter in FAILURES.items()}


async def relay_loop(
    settings: OrdersSettings, pool: asyncpg.Pool, stop: asyncio.Event, after_publish: Hook
) -> None:
    """One life of the outbox relay, with its own producer."""
    producer = make_producer(settings, role="outbox-relay")
    await producer.start()
    try:
        relay = OutboxRelay(
            pool,
            producer,
            batch=settings.orders_relay_batch,
            poll_s=settings.orders_relay_poll_ms / 1000,
            after_publish=after_publish,
        )
        await relay.run(stop)
    finally:
        await producer.stop()


async def consumer_loop(
    settings: OrdersSettings,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    after_db_commit: Hook,
    live: dict[str, LifecycleConsumer],
) -> None:
    """One life of the lifecycle consumer; ``live`` holds it while it runs (readiness)."""
    consumer = make_consumer(settings, *TOPICS, group_id=settings.orders_consumer_group)
    producer = make_producer(settings, role="dlq")
    await producer.start()
    await consumer.start()
    try:
        worker = LifecycleConsumer(
            pool,
            consumer,
            DlqPublisher(producer, settings.service_name),
            after_db_commit=after_db_commit,
        )
        live["consumer"] = worker
        await worker.run(stop)
    finally:
        live.pop("consumer", None)
        with contextlib.suppress(Exception):
            await consumer.stop()
        await producer.stop()


def create_app(
    settings: OrdersSettings,
    *,
    after_publish: Hook = _nothing,
    after_db_commit: Hook = _nothing,
) -> FastAPI:
    """The ASGI app. Tests pass fault-injection hooks for the relay and the consumer."""
    ref = PoolRef()
    stop = asyncio.Event()
    live: dict[str, LifecycleConsumer] = {}
    loops = supervisors()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(settings)
        ref.set(pool)
        await migrate_pool(pool, SCHEMA, "services.orders.migrations")
        tasks = []
        if settings.orders_relay_enabled:
            tasks.append(
                asyncio.create_task(
                    loops["relay"].run(
                        stop, lambda: relay_loop(settings, pool, stop, after_publish)
                    )
                )
            )
        if settings.orders_consumer_enabled:
            tasks.append(
                asyncio.create_task(
                    loops["consumer"].run(
                        stop, lambda: consumer_loop(settings, pool, stop, after_db_commit, live)
                    )
                )
            )
        if settings.orders_prune_interval_ms:
            policy = retention(settings.orders_outbox_keep_ms, LIFECYCLE)  # the inbox's topics
            interval = settings.orders_prune_interval_ms / 1000
            tasks.append(
                asyncio.create_task(
                    loops["prune"].run(stop, lambda: prune_loop(pool, policy, interval, stop))
                )
            )
        if not settings.orders_tokens:
            log.warning("no MILLRACE_ORDERS_TOKENS configured: every API request is refused")
        log.info("orders started", http_port=settings.http_port)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            ref.set(None)
            await pool.close()
            log.info("orders stopped")

    app = FastAPI(
        title="Millrace orders",
        version="0.1.0",
        description="Customised order intake; lifecycle from scheduling and production events.",
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

    async def consumer_check() -> bool:
        if not settings.orders_consumer_enabled:
            return True
        return "consumer" in live and loops["consumer"].healthy

    async def relay_check() -> bool:
        return not settings.orders_relay_enabled or loops["relay"].healthy

    async def kafka_check() -> bool:
        return await kafka_ready(settings)

    async def db_check() -> bool:
        return await db_ready(ref.pool)

    checks = {
        "kafka": kafka_check,
        "postgres": db_check,
        "consumer": consumer_check,
        "relay": relay_check,
    }
    mount_ops(app, checks, settings.ops_port)
    app.include_router(orders_router(settings, ref))
    if settings.orders_bench_noop:
        app.include_router(noop_router(settings))
    install_http(
        app,
        max_body_bytes=settings.orders_max_body_bytes,
        requests=m.REQUESTS,
        latency=m.HTTP_LATENCY,
    )
    return app
