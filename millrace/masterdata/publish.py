"""Publish a plant to the compacted master-data topics, keyed by id, with CloudEvents headers.

The ``ce_id`` of a record is derived from its topic, key and content, so loading the same
plant twice publishes the same events (consumers that dedupe by id see no change).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from contracts.base import Contract
from contracts.envelope import derived_id, new_event, stable_hash
from contracts.masterdata import Customer, Machine, Product, Supplier
from millrace.masterdata.plant import Plant
from shared.kafka import make_producer
from shared.settings import ServiceSettings

MACHINES = "masterdata.machines.v1"
PRODUCTS = "masterdata.products.v1"
SUPPLIERS = "masterdata.suppliers.v1"
CUSTOMERS = "masterdata.customers.v1"
SERVICE = "masterdata"

Record = tuple[str, str, bytes, list[tuple[str, bytes]]]


def _key(item: Contract) -> str:
    if isinstance(item, Machine):
        return item.machine_id
    if isinstance(item, Product):
        return item.sku
    if isinstance(item, Supplier):
        return item.supplier_id
    assert isinstance(item, Customer)
    return item.customer_id


def records(plant: Plant) -> Iterator[Record]:
    """``(topic, key, value, headers)`` for every record of the plant."""
    sections: tuple[tuple[str, tuple[Contract, ...]], ...] = (
        (MACHINES, plant.machines),
        (PRODUCTS, plant.products),
        (SUPPLIERS, plant.suppliers),
        (CUSTOMERS, plant.customers),
    )
    for topic, items in sections:
        for item in items:
            key = _key(item)
            value = orjson.dumps(item.model_dump(mode="json"))
            event = new_event(
                topic=topic,
                service=SERVICE,
                subject=key,
                event_id=derived_id(topic, key, stable_hash(value)),
            )
            yield topic, key, value, event.headers()


async def publish_plant(settings: ServiceSettings, plant: Plant) -> int:
    """Send every record and wait for all acks (acks=all); return how many were sent."""
    producer = make_producer(settings, role="masterdata-loader")
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key.encode(), headers=headers)
            for topic, key, value, headers in records(plant)
        ]
        for future in futures:
            await future
        return len(futures)
    finally:
        await producer.stop()
