"""``millrace run orders`` killed with SIGKILL in the middle of a burst of POSTs: clients
retry with the same Idempotency-Key after the restart, and every order exists exactly once in
the database and has its ``order-placed`` event on Kafka with its deterministic ``ce_id``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
from aiokafka import TopicPartition
from support.orders import (
    ACME_TOKEN,
    TOKENS,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
    order_body,
    wait_for,
)
from support.telemetry import ServiceProcess, TopicReader, end_offsets, free_port

from contracts.envelope import derived_id

PLACED = "orders.order-placed.v1"
N = 200


async def post(
    client: httpx.AsyncClient,
    key: str,
    body: dict[str, object],
    gate: asyncio.Semaphore | None = None,
) -> str | None:
    if gate is not None:
        async with gate:
            return await post(client, key, body)
    headers = bearer(ACME_TOKEN) | {"Idempotency-Key": key}
    try:
        r = await client.post("/v1/orders", json=body, headers=headers)
    except httpx.HTTPError:
        return None
    return str(r.json()["order_id"]) if r.status_code in (200, 201) else None


async def test_sigkill_mid_burst_loses_nothing_and_duplicates_nothing(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    await ensure_manifest_topics(kafka_bootstrap)
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    assert settings.database_url is not None
    db_url = settings.database_url.get_secret_value()
    env = {
        "MILLRACE_DATABASE_URL": db_url,
        "MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MILLRACE_ORDERS_TOKENS": json.dumps([t.model_dump() for t in TOKENS]),
        "MILLRACE_ORDERS_CONSUMER_GROUP": settings.orders_consumer_group,
    }
    start: dict[TopicPartition, int] = await end_offsets(kafka_bootstrap, PLACED)
    service = ServiceProcess("orders", env, tmp_path / "orders.log", free_port())
    service.start()
    try:
        await service.wait_ready()
        await load_sample_plant(settings)
        keys = [f"burst-{i}" for i in range(N)]
        # One body for the burst and its retries: order_body() dates the order tomorrow, and a
        # run across midnight would retry with another body (409 by design).
        body = order_body()
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            gate = asyncio.Semaphore(8)
            tasks = [asyncio.create_task(post(client, k, body, gate)) for k in keys]
            await wait_for(lambda: _done_at_least(tasks, 20), 60, "the first orders")
            service.kill()
            first = await asyncio.gather(*tasks)
        assert None in first, "the kill landed after the burst; nothing was interrupted"
        service.start()
        await service.wait_ready()
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            retried = [await post(client, k, body) for k in keys]
    finally:
        service.terminate()
    assert None not in retried
    for before, after in zip(first, retried, strict=True):
        assert before is None or before == after
    conn = await asyncpg.connect(db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM orders.orders") == N
    finally:
        await conn.close()
    want = {derived_id("orders", oid, 0) for oid in retried if oid}
    async with TopicReader(kafka_bootstrap, start) as reader:
        await reader.poll_until(
            lambda records: want <= {dict(r.headers)["ce_id"].decode() for r in records}, 60
        )


async def _done_at_least(tasks: list[asyncio.Task[str | None]], n: int) -> bool:
    return sum(1 for t in tasks if t.done()) >= n
