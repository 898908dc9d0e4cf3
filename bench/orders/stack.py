"""What the orders benchmark runs against: local Kafka + PostgreSQL when none is given, the
orders service as a real process with the sample plant loaded, and a Kafka reader that
timestamps every ``orders.order-placed.v1`` arrival."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.manifest import TOPICS
from millrace.infra.kafka import KafkaConfig, LocalKafka
from millrace.infra.postgres import LocalPostgres, PostgresConfig
from millrace.infra.process import free_port
from millrace.masterdata.plant import load_plant
from millrace.masterdata.publish import publish_plant
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
PLACED = "orders.order-placed.v1"


@contextlib.contextmanager
def local_stack(workdir: Path) -> Iterator[tuple[str, str]]:
    kafka = LocalKafka(
        KafkaConfig(workdir / "kafka", free_port(), free_port(), tied_to_caller=True)
    )
    postgres = LocalPostgres(PostgresConfig(workdir / "postgres", free_port(), tied_to_caller=True))
    try:
        bootstrap = kafka.start()
        database_url = postgres.start()
        yield bootstrap, database_url
    finally:
        postgres.stop()
        kafka.stop()


async def fresh_database(database_url: str) -> str:
    name = f"bench_orders_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))


async def kafka_arrivals(
    bootstrap: str,
) -> tuple[dict[TopicPartition, int], dict[str, float], asyncio.Event, asyncio.Task[None]]:
    """Start reading order-placed from its current end; record wall-clock arrival per order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    parts = consumer.partitions_for_topic(PLACED) or set()
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(PLACED) or set()
    tps = [TopicPartition(PLACED, p) for p in sorted(parts)]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
    consumer.assign(tps)
    for tp, offset in ends.items():
        consumer.seek(tp, offset)
    arrivals: dict[str, float] = {}
    stop = asyncio.Event()

    async def read() -> None:
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        arrivals.setdefault(r.key.decode() if r.key else "", now)
        finally:
            await consumer.stop()

    return ends, arrivals, stop, asyncio.create_task(read())


class OrdersUnderTest:
    """``millrace run orders`` as a child process, with one plant token and the noop route."""

    def __init__(self, bootstrap: str, database_url: str, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.admin_url = database_url
        self.workdir = workdir
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.database_url = ""

    async def __aenter__(self) -> OrdersUnderTest:
        settings = ServiceSettings(kafka_bootstrap=self.bootstrap)
        await ensure_topics(settings, TOPICS)
        self.database_url = await fresh_database(self.admin_url)
        tokens = [{"sha256": hashlib.sha256(self.token.encode()).hexdigest(), "role": "plant"}]
        env = {
            **os.environ,
            "MILLRACE_KAFKA_BOOTSTRAP": self.bootstrap,
            "MILLRACE_DATABASE_URL": self.database_url,
            "MILLRACE_ORDERS_TOKENS": json.dumps(tokens),
            "MILLRACE_ORDERS_BENCH_NOOP": "true",
            "MILLRACE_ORDERS_CONSUMER_GROUP": f"bench-{uuid.uuid4().hex[:8]}",
            "MILLRACE_HTTP_PORT": str(self.port),
            "MILLRACE_DATABASE_POOL_MAX": "20",
            "MILLRACE_LOG_LEVEL": "WARNING",
        }
        self.proc = self._spawn(env)
        await self._wait_ready()
        await publish_plant(settings, load_plant(PLANT))
        await self._wait_catalogue()
        return self

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / "orders.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "millrace.cli", "run", "orders"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(60)

    async def _wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError((self.workdir / "orders.log").read_text()[-3000:])
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.3)
        raise RuntimeError("orders service not ready")

    async def _wait_catalogue(self, timeout_s: float = 60) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                products = await conn.fetchval("SELECT count(*) FROM orders.products")
                customers = await conn.fetchval("SELECT count(*) FROM orders.customers")
                if products >= 5 and customers >= 3:
                    return
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        raise RuntimeError("product and customer views not loaded")

    async def wait_outbox_drained(self, timeout_s: float) -> int:
        conn = await asyncpg.connect(self.database_url)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                left: Any = await conn.fetchval(
                    "SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL"
                )
                if left == 0 or time.monotonic() > deadline:
                    return int(left)
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
