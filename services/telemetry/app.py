"""Wiring of the telemetry service: HTTP ingest + ops endpoints + the supervised aggregator."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from services.telemetry import metrics as m
from services.telemetry.aggregator.loop import Aggregator
from services.telemetry.engine.monitor import Monitor
from services.telemetry.engine.store import MIGRATIONS, SCHEMA, SnapshotStore
from services.telemetry.ingest import ingest_router, install_ingest_counting
from services.telemetry.kafka.records import make_raw_consumer
from services.telemetry.rules.book import RuleBook, load_rules
from services.telemetry.settings import TelemetrySettings
from shared.broker import make_broker
from shared.db import create_pool, db_ready
from shared.http import docs_urls, install_http, mount_ops
from shared.kafka import kafka_ready, make_producer
from shared.logging import get_logger
from shared.migrations import migrate_pool
from shared.supervise import Supervisor

log = get_logger(__name__)


@dataclass(frozen=True)
class AggregatorClients:
    """The aggregator's consumer, its producer of windows (and dead letters), and a producer of
    alarms and machine states that sends each event at once (no linger) on a connection of its
    own. A role that runs only one of the two has only that producer, in both fields."""

    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    events: AIOKafkaProducer

    @property
    def producers(self) -> list[AIOKafkaProducer]:
        return [self.producer] if self.producer is self.events else [self.producer, self.events]

    async def start(self) -> None:
        for producer in self.producers:
            await producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        """Stop each client, whatever another one raises (after an error some never started)."""
        for client in (self.consumer, *self.producers):
            with contextlib.suppress(Exception):
                await client.stop()


def make_aggregator_clients(settings: TelemetrySettings) -> AggregatorClients:
    """The clients of the aggregator of ``settings``' role (not yet started)."""
    consumer = make_aggregator_consumer(settings)
    if not settings.runs_alarms:
        windows = make_producer(settings, role="aggregator")
        return AggregatorClients(consumer, windows, windows)
    events = make_events_producer(settings)
    if not settings.runs_windows:
        return AggregatorClients(consumer, events, events)
    return AggregatorClients(consumer, make_producer(settings, role="aggregator"), events)


def make_aggregator_consumer(settings: TelemetrySettings) -> AIOKafkaConsumer:
    """The aggregator's consumer of readings (not yet subscribed), in its role's group; its
    polls return raw records (``kafka.records``)."""
    return make_raw_consumer(
        settings,
        group_id=settings.telemetry_group,
        role="aggregator",
        max_poll_records=settings.telemetry_max_poll_records,
    )


def make_events_producer(settings: TelemetrySettings) -> AIOKafkaProducer:
    """The producer of alarms and machine states: each event is sent at once (no linger)."""
    return make_producer(settings.model_copy(update={"kafka_linger_ms": 0}), role="events")


async def aggregator_life(
    settings: TelemetrySettings,
    stop: asyncio.Event,
    state: dict[str, Aggregator],
    pool: asyncpg.Pool | None = None,
) -> None:
    """One life of the aggregator, with fresh clients; it resumes from the committed offsets,
    so a restart after an error (Kafka outage, ...) skips and dead-letters nothing."""
    clients = make_aggregator_clients(settings)
    try:
        await clients.start()
        monitor = _monitor(settings, pool)
        agg = Aggregator(settings, clients.consumer, clients.producer, monitor, clients.events)
        state["aggregator"] = agg
        await agg.run(stop)
    finally:
        state.pop("aggregator", None)
        await clients.stop()


def aggregator_supervisor() -> Supervisor:
    return Supervisor("aggregator", failures=m.RESTARTS, backoff_s=1.0, max_backoff_s=30.0)


def _monitor(settings: TelemetrySettings, pool: asyncpg.Pool | None) -> Monitor:
    """Fresh engines per aggregator (re)start; they resume from the snapshots in PostgreSQL."""
    lateness = settings.telemetry_allowed_lateness_ms
    rules = settings.alarm_rules_in_use
    if rules is None or pool is None:
        return Monitor(RuleBook(), lateness)
    book = load_rules(rules)
    store = SnapshotStore(pool, settings.telemetry_group)
    return Monitor(
        book,
        lateness,
        store,
        settings.telemetry_alarm_snapshot_interval_ms,
        settings.telemetry_idle_close_ms,
    )


def create_app(
    settings: TelemetrySettings, broker: KafkaBroker | None = None, *, aggregator: bool = True
) -> FastAPI:
    """The ASGI app. Tests pass FastStream's TestKafkaBroker-patched broker and no aggregator."""
    kafka = broker or make_broker(settings)
    stop = asyncio.Event()
    state: dict[str, Aggregator] = {}
    pools: dict[str, asyncpg.Pool] = {}
    supervisor = aggregator_supervisor()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.runs_windows:  # the ingest's producer; the alarms role has no ingest
            await kafka.start()
        task = None
        rules = settings.alarm_rules_in_use
        if aggregator and settings.telemetry_aggregator_enabled:
            if rules is not None:
                pools["db"] = await create_pool(settings)
                await migrate_pool(pools["db"], SCHEMA, MIGRATIONS)
            life = functools.partial(aggregator_life, settings, stop, state, pools.get("db"))
            task = asyncio.create_task(supervisor.run(stop, life))
        log.info(
            "telemetry started",
            http_port=settings.http_port,
            role=settings.telemetry_role,
            group=settings.telemetry_group,
            windows=settings.telemetry_windows if settings.runs_windows else None,
            alarm_rules=None if rules is None else str(rules),
        )
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if "db" in pools:
                await pools["db"].close()
            if settings.runs_windows:
                await kafka.stop()
            log.info("telemetry stopped")

    app = FastAPI(
        title="Millrace telemetry",
        version="0.1.0",
        description="HTTP ingest of device readings into telemetry.readings.v1.",
        lifespan=lifespan,
        **docs_urls(settings.ops_port),
    )

    async def kafka_check() -> bool:
        return await kafka_ready(settings)

    async def aggregator_check() -> bool:
        if not (aggregator and settings.telemetry_aggregator_enabled):
            return True
        agg = state.get("aggregator")
        return agg is not None and agg.healthy and supervisor.healthy

    async def database_check() -> bool:
        return "db" not in pools or await db_ready(pools["db"])

    checks = {"kafka": kafka_check, "aggregator": aggregator_check, "database": database_check}
    mount_ops(app, checks, settings.ops_port)
    if settings.runs_windows:  # the alarms role serves probes and metrics only
        app.include_router(ingest_router(settings, kafka))
    install_http(
        app,
        max_body_bytes=settings.telemetry_ingest_max_body_bytes,
        requests=m.HTTP_REQUESTS,
        latency=m.HTTP_LATENCY,
    )
    install_ingest_counting(app)
    return app
