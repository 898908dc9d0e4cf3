"""A simulated customer for demos: places seeded orders over the orders API.

The orders it places fit the plant's products (1-2 lines, every option drawn at random), so
the intake accepts them; what happens to them next is the scheduler's and the shop floor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from millrace.masterdata.plant import Plant
from shared.logging import get_logger

CUSTOMERS = ("acme", "globex", "initech")
log = get_logger(__name__)


@dataclass(frozen=True)
class CustomerConfig:
    orders_url: str
    token: str
    order_every_s: float = 5.0
    seed: int = 1
    max_quantity: int = 5


def order_request(
    plant: Plant, rng: random.Random, today: datetime, max_quantity: int = 5
) -> dict[str, Any]:
    """A valid order for the plant: 1-2 lines, every option chosen at random."""
    lines = []
    for product in rng.sample(list(plant.products), k=rng.randint(1, 2)):
        options = {o.name: rng.choice(o.values) for o in product.options}
        top = max(product.min_order_qty, min(product.max_order_qty, max_quantity))
        quantity = rng.randint(product.min_order_qty, top)
        lines.append({"sku": product.sku, "quantity": quantity, "options": options})
    due = (today + timedelta(days=rng.randint(7, 30))).date().isoformat()
    return {
        "customer": rng.choice(CUSTOMERS),
        "lines": lines,
        "due_date": due,
        "priority": rng.choice(["low", "normal", "high", "rush"]),
    }


async def place_orders(
    client: httpx.AsyncClient, cfg: CustomerConfig, plant: Plant, stop: asyncio.Event
) -> int:
    """POST an order every ``order_every_s`` until ``stop``; return how many were accepted.

    ``client`` is based at the orders API (``cfg.orders_url`` for a real service)."""
    rng = random.Random(cfg.seed)
    placed = 0
    headers = {"Authorization": f"Bearer {cfg.token}"}
    while not stop.is_set():
        body = order_request(plant, rng, datetime.now(UTC), cfg.max_quantity)
        # A new key per order, not drawn from the seeded rng: a second demo on the same
        # database would otherwise reuse the first run's keys and be answered 409.
        key = {"Idempotency-Key": str(uuid.uuid4())}
        with contextlib.suppress(httpx.HTTPError):
            r = await client.post("/v1/orders", json=body, headers=headers | key)
            if r.status_code in (200, 201):
                placed += 1
            else:
                log.warning("order refused", status=r.status_code, reason=r.text[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), cfg.order_every_s)
    return placed
