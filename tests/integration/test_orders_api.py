"""Orders API on real PostgreSQL and Kafka: intake, idempotency, auth, lifecycle views."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from support.orders import (
    ACME_TOKEN,
    GLOBEX_TOKEN,
    PLANT_TOKEN,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
    order_body,
    running,
)

from services.orders.settings import OrdersSettings


@pytest.fixture
async def settings(database_url: str, kafka_bootstrap: str) -> OrdersSettings:
    await ensure_manifest_topics(kafka_bootstrap)
    return make_settings(await fresh_database(database_url), kafka_bootstrap)


@pytest.fixture
async def client(settings: OrdersSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as c:
        await load_sample_plant(settings)
        yield c


def acme(key: str) -> dict[str, str]:
    return bearer(ACME_TOKEN) | {"Idempotency-Key": key}


async def test_place_and_read_back(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/orders", json=order_body(), headers=acme("k-1"))
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["customer"] == "acme"
    assert order["status"] == "accepted"
    assert order["lines"][1]["options"] == {"length_mm": "100", "engraving": "none"}
    assert order["total_minor"] == 2 * 89000 + 2 * 7900
    got = await client.get(f"/v1/orders/{order['order_id']}", headers=bearer(ACME_TOKEN))
    assert got.status_code == 200
    assert [e["kind"] for e in got.json()["timeline"]] == ["received", "accepted"]


async def test_idempotency_replay_and_conflict(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/orders", json=order_body(), headers=acme("k-2"))
    again = await client.post("/v1/orders", json=order_body(), headers=acme("k-2"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order_id"] == first.json()["order_id"]
    other = await client.post("/v1/orders", json=order_body(priority="low"), headers=acme("k-2"))
    assert other.status_code == 409
    missing = await client.post("/v1/orders", json=order_body(), headers=bearer(ACME_TOKEN))
    assert missing.status_code == 400


async def test_fifty_concurrent_identical_posts_make_one_order(
    client: httpx.AsyncClient,
) -> None:
    body = order_body()
    replies = await asyncio.gather(
        *(client.post("/v1/orders", json=body, headers=acme("k-concurrent")) for _ in range(50))
    )
    assert sorted({r.status_code for r in replies}) == [200, 201]
    assert [r.status_code for r in replies].count(201) == 1
    assert len({r.json()["order_id"] for r in replies}) == 1
    page = await client.get("/v1/orders", headers=bearer(ACME_TOKEN), params={"limit": 100})
    assert len(page.json()["orders"]) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (order_body(lines=[{"sku": "nope", "quantity": 1}]), "unknown sku"),
        (order_body(lines=[{"sku": "stem-cnc", "quantity": 1, "options": {"hue": "x"}}]), "hue"),
        (
            order_body(lines=[{"sku": "frame-road", "quantity": 500, "options": {"size": "54"}}]),
            "outside",
        ),
        (order_body(due_date="2001-01-01"), "in the past"),
        (order_body(colour="red"), "colour"),
        (order_body(lines=[]), "lines"),
        (order_body(lines=[{"sku": "stem-cnc", "quantity": 0}]), "quantity"),
    ],
)
async def test_invalid_orders_get_422_with_the_reason(
    client: httpx.AsyncClient, body: dict[str, object], reason: str
) -> None:
    r = await client.post("/v1/orders", json=body, headers=acme(f"bad-{reason}".replace(" ", "-")))
    assert r.status_code == 422, r.text
    assert reason in r.text


async def test_auth_fails_closed_and_scopes_customers(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/orders", json=order_body())).status_code == 401
    wrong = bearer("guess") | {"Idempotency-Key": "x"}
    assert (await client.post("/v1/orders", json=order_body(), headers=wrong)).status_code == 401
    mine = (await client.post("/v1/orders", json=order_body(), headers=acme("k-3"))).json()
    url = f"/v1/orders/{mine['order_id']}"
    assert (await client.get(url, headers=bearer(GLOBEX_TOKEN))).status_code == 404
    assert (await client.get(url, headers=bearer(PLANT_TOKEN))).status_code == 200
    cancel = await client.post(f"{url}/cancel", headers=bearer(GLOBEX_TOKEN))
    assert cancel.status_code == 404
    theirs = await client.get("/v1/orders", headers=bearer(GLOBEX_TOKEN))
    assert theirs.json()["orders"] == []
    plant = bearer(PLANT_TOKEN) | {"Idempotency-Key": "p-1"}
    no_customer = await client.post("/v1/orders", json=order_body(), headers=plant)
    assert no_customer.status_code == 422
    for_acme = await client.post("/v1/orders", json=order_body(customer="acme"), headers=plant)
    assert for_acme.status_code == 201
    as_other = await client.post(
        "/v1/orders", json=order_body(customer="globex"), headers=acme("k-4")
    )
    assert as_other.status_code == 403


async def test_paging_and_filters(client: httpx.AsyncClient) -> None:
    ids = []
    for i in range(5):
        r = await client.post("/v1/orders", json=order_body(), headers=acme(f"page-{i}"))
        ids.append(r.json()["order_id"])
    await client.post(f"/v1/orders/{ids[0]}/cancel", headers=bearer(ACME_TOKEN))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "customer": "acme"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/orders", headers=bearer(PLANT_TOKEN), params=params)).json()
        seen += [o["order_id"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    cancelled = await client.get(
        "/v1/orders", headers=bearer(ACME_TOKEN), params={"status": "cancelled"}
    )
    assert [o["order_id"] for o in cancelled.json()["orders"]] == [ids[0]]
    bad = await client.get("/v1/orders", headers=bearer(ACME_TOKEN), params={"cursor": "zz"})
    assert bad.status_code == 422


async def test_cancel_then_409(client: httpx.AsyncClient) -> None:
    order = (await client.post("/v1/orders", json=order_body(), headers=acme("k-5"))).json()
    url = f"/v1/orders/{order['order_id']}/cancel"
    first = await client.post(url, json={"reason": "changed my mind"}, headers=bearer(ACME_TOKEN))
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    again = await client.post(url, headers=bearer(ACME_TOKEN))
    assert again.status_code == 409


async def test_body_limit_and_ops_endpoints(client: httpx.AsyncClient) -> None:
    huge = order_body(lines=[{"sku": "stem-cnc", "quantity": 1}] * 5000)
    assert (await client.post("/v1/orders", json=huge, headers=acme("k-6"))).status_code == 413
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    metrics = (await client.get("/metrics")).text
    assert "millrace_orders_placed_total" in metrics
    assert "/v1/orders" in (await client.get("/openapi.json")).text
