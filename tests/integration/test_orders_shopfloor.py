"""The simulated customer and shop floor drive real orders through their whole lifecycle:
placed over HTTP, then scheduled, in production and completed from Kafka events."""

from __future__ import annotations

import asyncio
from typing import Any

from support.orders import (
    PLANT,
    PLANT_TOKEN,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
    running,
    wait_for,
)

from millrace.masterdata.plant import load_plant
from millrace.simulator.shopfloor import ShopFloorConfig, place_orders, play_shop_floor


async def test_simulated_orders_reach_completed(database_url: str, kafka_bootstrap: str) -> None:
    await ensure_manifest_topics(kafka_bootstrap)
    settings = make_settings(await fresh_database(database_url), kafka_bootstrap)
    plant = load_plant(PLANT)
    cfg = ShopFloorConfig("http://orders", PLANT_TOKEN, order_every_s=0.2, step_s=0.05)
    stop = asyncio.Event()
    async with running(settings) as client:
        await load_sample_plant(settings)
        floor = asyncio.create_task(play_shop_floor(kafka_bootstrap, plant, cfg, stop))
        await asyncio.sleep(1.0)
        customer = asyncio.create_task(place_orders(client, cfg, plant, stop))

        async def completed() -> list[dict[str, Any]]:
            page = await client.get(
                "/v1/orders", headers=bearer(PLANT_TOKEN), params={"status": "completed"}
            )
            orders: list[dict[str, Any]] = page.json()["orders"]
            return orders if len(orders) >= 3 else []

        done = await wait_for(completed, 90, "three completed orders")
        stop.set()
        placed, played = await customer, await floor
        first = await client.get(f"/v1/orders/{done[0]['order_id']}", headers=bearer(PLANT_TOKEN))
    assert placed >= 3
    assert played >= 3
    kinds = [e["kind"] for e in first.json()["timeline"]]
    assert {"operation-scheduled", "operation-started", "operation-completed"} <= set(kinds)
    statuses = [e["status"] for e in first.json()["timeline"] if e["kind"] == "status-changed"]
    assert statuses[-1] == "completed"
