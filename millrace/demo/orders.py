"""Orders in the demo: the sample plant loaded, ``millrace run orders`` as a child, a simulated
customer placing orders, and lines for the live view. The orders move on as the scheduling
service plans them and the simulator's shop floor executes the plan.

The demo's tokens are fixed and printed, so a user can place and read orders with curl; they
are demo credentials on loopback only (``env=dev``), configured by digest like any others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from millrace.demo.children import Child, wait_http_ok
from millrace.masterdata.plant import Plant, load_plant
from millrace.masterdata.publish import publish_plant
from millrace.simulator.customer import CustomerConfig, place_orders
from shared.settings import ServiceSettings

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
PLANT_TOKEN = "demo-plant-token"  # noqa: S105 - demo credential, printed to the user
CUSTOMER_TOKEN = "demo-acme-token"  # noqa: S105 - demo credential, printed
FOLLOWED = ("orders.order-placed.v1", "orders.order-status-changed.v1")
STATUSES = ("accepted", "scheduled", "in_production", "completed", "cancelled")


def tokens_env() -> str:
    """``MILLRACE_ORDERS_TOKENS`` for the demo's two tokens."""
    return json.dumps(
        [
            {"sha256": hashlib.sha256(PLANT_TOKEN.encode()).hexdigest(), "role": "plant",
             "name": "demo"},
            {"sha256": hashlib.sha256(CUSTOMER_TOKEN.encode()).hexdigest(), "role": "customer",
             "customer": "acme"},
        ]
    )  # fmt: skip


class OrdersDemo:
    """Owns the orders child and the simulated customer, shop floor and status follower."""

    def __init__(self, env: Mapping[str, str], run_dir: Path, bootstrap: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.bootstrap = bootstrap
        child_env = {
            **env,
            "MILLRACE_HTTP_PORT": str(port),
            "MILLRACE_ORDERS_TOKENS": tokens_env(),
        }
        argv = [sys.executable, "-m", "millrace.cli", "run", "orders"]
        self.child = Child("orders", argv, child_env, run_dir / "orders.log")
        self.plant: Plant = load_plant(PLANT)
        self.status: dict[str, str] = {}
        self.latest = ""
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[object]] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self, ready_timeout_s: float) -> None:
        """Publish the plant, start the service, then the customer and the status follower."""
        await publish_plant(ServiceSettings(kafka_bootstrap=self.bootstrap), self.plant)
        self.child.start()
        await wait_http_ok(self.child, f"{self.url}/readyz", ready_timeout_s)
        print(
            f"orders: ready on {self.url} (pid {self.child.pid}); tokens {PLANT_TOKEN} (plant), "
            f"{CUSTOMER_TOKEN} (customer acme)",
            file=sys.stderr,
        )
        self._client = httpx.AsyncClient(base_url=self.url, timeout=10)
        self._tasks = [asyncio.create_task(self._follow())]

    def start_customer(self, order_every_s: float, seed: int) -> None:
        """Place orders from now on (once the scheduler and the shop floor are up)."""
        assert self._client is not None, "start() first"
        cfg = CustomerConfig(self.url, PLANT_TOKEN, order_every_s=order_every_s, seed=seed)
        self._tasks.append(
            asyncio.create_task(place_orders(self._client, cfg, self.plant, self._stop))
        )

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            *FOLLOWED, bootstrap_servers=self.bootstrap, auto_offset_reset="latest"
        )
        await consumer.start()
        try:
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=250)
                for records in batch.values():
                    for r in records:
                        data = orjson.loads(r.value or b"{}")
                        self.status[data["order_id"]] = data["status"]
                        self.latest = (
                            f"{data['order_id'][:8]} {data.get('customer', '')} -> {data['status']}"
                        )
        finally:
            await consumer.stop()

    def lines(self) -> list[str]:
        """Two lines for the live view: orders by status, and the latest change."""
        counts = Counter(self.status.values())
        by_status = "  ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES)
        return [
            f"orders {self.url} (token {CUSTOMER_TOKEN}): {len(self.status)} placed   {by_status}",
            f"latest order change: {self.latest or '-'}",
        ]

    async def stop_simulation(self) -> None:
        """Stop placing and following orders (before the services stop)."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
