"""Orders intake on real PostgreSQL and Kafka: customers come from master data, due dates have
a horizon, and idempotent replays are compared by the resolved request."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from support.orders import (
    ACME_TOKEN,
    PLANT_TOKEN,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
    order_body,
    running,
    wait_for,
)

from contracts.masterdata import Customer
from millrace.masterdata.plant import Plant
from millrace.masterdata.publish import CUSTOMERS, publish_plant
from services.orders.settings import OrdersSettings
from shared.kafka import make_producer


@pytest.fixture
async def settings(database_url: str, kafka_bootstrap: str) -> OrdersSettings:
    await ensure_manifest_topics(kafka_bootstrap)
    return make_settings(await fresh_database(database_url), kafka_bootstrap)


@pytest.fixture
async def client(settings: OrdersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as c:
        await load_sample_plant(settings)
        yield c


def plant(key: str) -> dict[str, str]:
    return bearer(PLANT_TOKEN) | {"Idempotency-Key": key}


def acme(key: str) -> dict[str, str]:
    return bearer(ACME_TOKEN) | {"Idempotency-Key": key}


async def test_an_order_for_an_unknown_customer_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/orders", json=order_body(customer="nobody"), headers=plant("u-1"))
    assert r.status_code == 422, r.text
    assert "unknown customer 'nobody'" in r.text
    ok = await client.post("/v1/orders", json=order_body(customer="initech"), headers=plant("u-2"))
    assert ok.status_code == 201, ok.text
    assert ok.json()["customer"] == "initech"


async def test_a_customer_leaves_the_view_with_its_tombstone(
    client: httpx.AsyncClient, settings: OrdersSettings
) -> None:
    cid = f"tmp-{uuid.uuid4().hex[:8]}"
    customer = Customer(customer_id=cid, name="Tmp", country="NL")
    await publish_plant(settings, Plant((), (), (), (customer,)))

    def answers(status: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            key = uuid.uuid4().hex
            r = await client.post("/v1/orders", json=order_body(customer=cid), headers=plant(key))
            return r.status_code == status

        return check

    await wait_for(answers(201), 30, "the new customer in the view")
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(CUSTOMERS, None, key=cid.encode())
    finally:
        await producer.stop()
    await wait_for(answers(422), 30, "the tombstone to remove the customer")


@pytest.mark.parametrize("due", ["9999-12-31", "horizon+1"])
async def test_a_due_date_beyond_the_horizon_is_refused(
    client: httpx.AsyncClient, due: str
) -> None:
    if due == "horizon+1":
        due = (datetime.now(UTC).date() + timedelta(days=731)).isoformat()
    r = await client.post("/v1/orders", json=order_body(due_date=due), headers=acme(f"d-{due}"))
    assert r.status_code == 422, r.text
    assert f"{due} is beyond the 730-day horizon" in r.text
    last = (datetime.now(UTC).date() + timedelta(days=729)).isoformat()
    ok = await client.post("/v1/orders", json=order_body(due_date=last), headers=acme(f"ok-{due}"))
    assert ok.status_code == 201, ok.text


def spelled_out(body: dict[str, Any]) -> dict[str, Any]:
    """The same order with the stem's default options and the token's customer written out."""
    lines = [dict(line) for line in body["lines"]]
    lines[1]["options"] = {"engraving": "none", "length_mm": "100"}
    return body | {"lines": lines, "customer": "acme"}


async def test_a_replay_that_spells_out_defaults_is_the_same_request(
    client: httpx.AsyncClient,
) -> None:
    body = order_body()
    first = await client.post("/v1/orders", json=body, headers=acme("r-1"))
    assert first.status_code == 201, first.text
    again = await client.post("/v1/orders", json=spelled_out(body), headers=acme("r-1"))
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order_id"] == first.json()["order_id"]
    other = spelled_out(body)
    other["lines"][1]["options"]["engraving"] = "logo"
    conflict = await client.post("/v1/orders", json=other, headers=acme("r-1"))
    assert conflict.status_code == 409, conflict.text


async def test_a_key_stored_by_an_earlier_release_still_replays(
    client: httpx.AsyncClient, settings: OrdersSettings
) -> None:
    body = order_body()
    first = await client.post("/v1/orders", json=body, headers=acme("old-1"))
    assert first.status_code == 201, first.text
    # What earlier releases stored: the SHA-256 of the body as parsed, with the customer.
    parsed = body | {"customer": "acme", "lines": [dict(line) for line in body["lines"]]}
    parsed["lines"][1]["options"] = {}
    legacy = hashlib.sha256(orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await conn.execute(
            "UPDATE orders.orders SET request_hash = $1 WHERE order_id = $2",
            legacy,
            first.json()["order_id"],
        )
    finally:
        await conn.close()
    again = await client.post("/v1/orders", json=body, headers=acme("old-1"))
    assert again.status_code == 200, again.text
    assert again.json()["order_id"] == first.json()["order_id"]
    low = order_body(priority="low")
    changed = await client.post("/v1/orders", json=low, headers=acme("old-1"))
    assert changed.status_code == 409, changed.text
