"""``millrace masterdata load <plant.yaml>``: publish a plant's master data to Kafka."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from contracts.manifest import topic
from millrace.masterdata.plant import PlantError, load_plant
from millrace.masterdata.publish import CUSTOMERS, MACHINES, PRODUCTS, SUPPLIERS, publish_plant
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings, load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "masterdata", help="master data (machines, products, suppliers, customers)"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    load = sub.add_parser("load", help="validate a plant YAML file and publish it")
    load.add_argument("plant", help="path of the plant file, e.g. deploy/local/plant.yaml")
    load.add_argument(
        "--ensure-topics", action="store_true", help="create the master-data topics first"
    )
    load.set_defaults(func=run_load)


def run_load(args: argparse.Namespace) -> int:
    try:
        plant = load_plant(args.plant)
    except (PlantError, OSError) as exc:
        print(f"invalid plant: {exc}")
        return 2
    settings = load_settings(ServiceSettings)

    async def go() -> int:
        if args.ensure_topics:
            names = (MACHINES, PRODUCTS, SUPPLIERS, CUSTOMERS)
            await ensure_topics(settings, [topic(t) for t in names])
        return await publish_plant(settings, plant)

    sent = asyncio.run(go())
    print(
        f"published {len(plant.machines)} machines, {len(plant.products)} products, "
        f"{len(plant.suppliers)} suppliers, {len(plant.customers)} customers ({sent} records)"
        f" to {settings.kafka_bootstrap}"
    )
    return 0
