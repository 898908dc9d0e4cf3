"""The simulated plant in one process: the machines' telemetry, the shop floor executing the
plan (sharing the machines' state with the telemetry, so a working machine's signals show it
and a broken one goes silent) and, when an orders API is given, a customer placing orders."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from millrace.masterdata.plant import load_plant
from millrace.simulator.config import SimulatorConfig
from millrace.simulator.customer import CustomerConfig, place_orders
from millrace.simulator.floor import Floor
from millrace.simulator.plant_fleet import PlantFleet, run_plant_telemetry
from millrace.simulator.shopfloor import ShopFloorConfig, run_shop_floor
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class PlantLoop:
    plant: Path
    shop_floor: bool = True
    break_every_s: float = 120.0
    repair_s: float = 60.0
    orders_url: str | None = None
    orders_token: str | None = None
    order_every_s: float = 20.0
    plan_id: str | None = None


async def run_plant_loop(
    loop_cfg: PlantLoop, cfg: SimulatorConfig, settings: ServiceSettings, stop: asyncio.Event
) -> int:
    """Run until ``stop`` or the duration; 0 when every reading was delivered."""
    plant = load_plant(loop_cfg.plant)
    routings = {p.sku: tuple(op.seq for op in p.routing) for p in plant.products}
    machines = [m.machine_id for m in plant.machines]
    now_ms = time.time_ns() // 1_000_000
    floor = Floor(machines, routings, seed=cfg.seed, since_ms=now_ms, plan_id=loop_cfg.plan_id)
    fleet = PlantFleet(plant, cfg.seed, floor if loop_cfg.shop_floor else None)
    tasks: list[asyncio.Task[int]] = []
    if loop_cfg.shop_floor:
        floor_cfg = ShopFloorConfig(
            seed=cfg.seed, break_every_s=loop_cfg.break_every_s, repair_s=loop_cfg.repair_s
        )
        tasks.append(asyncio.create_task(run_shop_floor(settings, floor, floor_cfg, stop)))
    client = None
    if loop_cfg.orders_url:
        client = httpx.AsyncClient(base_url=loop_cfg.orders_url, timeout=10.0)
        customer = CustomerConfig(
            loop_cfg.orders_url, loop_cfg.orders_token or "", loop_cfg.order_every_s, cfg.seed
        )
        tasks.append(asyncio.create_task(place_orders(client, customer, plant, stop)))
    try:
        report = await run_plant_telemetry(cfg, fleet, kafka_settings=settings, stop=stop)
    finally:
        stop.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await client.aclose()
    print(report.summary(), file=sys.stderr)
    if loop_cfg.shop_floor:
        print(f"shop floor: {results[0]} operations completed", file=sys.stderr)
    if loop_cfg.orders_url:
        print(f"customer: {results[-1]} orders placed", file=sys.stderr)
    return 0 if report.total_sent == report.readings_generated else 1
