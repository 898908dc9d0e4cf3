"""Readiness on real Kafka and PostgreSQL: a background loop that keeps failing soon after each
start makes ``/readyz`` answer 503 and name it, even while a new life of it is running (before,
each restart looked ready until it failed again); the process stays live."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import scheduling as scheduling_support
from support.orders import ensure_manifest_topics, fresh_database, make_settings, running

from services.orders import app as orders_app
from services.scheduling.loops import Loops
from services.telemetry import app as telemetry_app
from services.telemetry.settings import TelemetrySettings


async def until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_crash_looping_orders_consumer_makes_orders_not_ready(
    monkeypatch: pytest.MonkeyPatch, database_url: str, kafka_bootstrap: str
) -> None:
    lives = 0

    async def short_lived(*args: Any) -> None:
        nonlocal lives
        live = args[-1]
        lives += 1
        live["consumer"] = object()  # started, as the real one registers itself
        try:
            await asyncio.sleep(1.0)
            raise ConnectionError("consumer lost its broker")
        finally:
            live.pop("consumer", None)

    monkeypatch.setattr(orders_app, "consumer_loop", short_lived)
    await ensure_manifest_topics(kafka_bootstrap)
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    async with running(settings) as client:
        await until(lambda: lives == 1)
        assert (await client.get("/readyz")).status_code == 200  # the first life looks fine
        await until(lambda: lives == 4)  # three failed within seconds of their start
        r = await client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "not ready",
            "checks": {"kafka": True, "postgres": True, "consumer": False, "relay": True},
        }
        assert (await client.get("/healthz")).status_code == 200


class Healthy:
    healthy = True


async def test_a_crash_looping_aggregator_makes_telemetry_not_ready(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    lives = 0

    async def short_lived(
        settings: TelemetrySettings, stop: asyncio.Event, state: dict[str, Any], pool: Any
    ) -> None:
        nonlocal lives
        lives += 1
        state["aggregator"] = Healthy()
        try:
            await asyncio.sleep(1.0)
            raise ConnectionError("aggregator lost its broker")
        finally:
            state.pop("aggregator", None)

    monkeypatch.setattr(telemetry_app, "aggregator_life", short_lived)
    await ensure_manifest_topics(kafka_bootstrap)
    app = telemetry_app.create_app(TelemetrySettings(kafka_bootstrap=kafka_bootstrap))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await until(lambda: lives == 1)
            assert (await client.get("/readyz")).status_code == 200
            await until(lambda: lives == 4, timeout_s=30)  # backoff 1, 2, 4 s
            r = await client.get("/readyz")
            assert r.status_code == 503
            assert r.json()["checks"] == {"kafka": True, "aggregator": False, "database": True}
            assert (await client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("loop", ["consumer", "planner", "relay"])
async def test_a_crash_looping_scheduling_loop_makes_scheduling_not_ready(
    monkeypatch: pytest.MonkeyPatch, database_url: str, kafka_bootstrap: str, loop: str
) -> None:
    lives = 0

    async def short_lived(self: Loops) -> None:
        nonlocal lives
        lives += 1
        self.live.add(loop)  # started, as the real consumer and planner register themselves
        try:
            await asyncio.sleep(1.0)
            raise ConnectionError(f"{loop} lost its broker")
        finally:
            self.live.discard(loop)

    monkeypatch.setattr(Loops, loop, short_lived)
    db = await scheduling_support.fresh_database(database_url)
    # only the loop under test among those readiness watches: the real consumer's first life
    # could still be joining its group when the fake loop's first answer is taken
    alone = {f"scheduling_{name}_enabled": name == loop for name in ("consumer", "relay")}
    settings = scheduling_support.make_settings(db, kafka_bootstrap, **alone)
    await scheduling_support.prepare(settings)
    async with scheduling_support.running(settings) as client:
        await until(lambda: lives == 1)
        r = await client.get("/readyz")
        assert r.status_code == 200, r.json()  # the first life looks fine
        await until(lambda: lives == 4)  # three failed within seconds of their start
        r = await client.get("/readyz")
        assert r.status_code == 503
        checks = {"kafka": True, "postgres": True, "consumer": True, "planner": True, "relay": True}
        assert r.json()["checks"] == checks | {loop: False}
        assert (await client.get("/healthz")).status_code == 200
