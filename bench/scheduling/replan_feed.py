"""What the re-planning benchmark feeds the service: the plant with a twin of every machine,
open orders, and machine-state changes; each send returns the record's Kafka timestamp."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.base import Contract
from contracts.envelope import new_event
from contracts.orders import OrderLine, OrderPlaced, OrderStatus, Priority
from contracts.telemetry import MachineState, MachineStateName
from millrace.masterdata.plant import Plant
from millrace.masterdata.publish import MACHINES, publish_plant
from services.scheduling.adapters.consumer import TOPICS
from shared.kafka import make_producer
from shared.settings import ServiceSettings

PLACED, STATES = "orders.order-placed.v1", "telemetry.machine-states.v1"


class Feed:
    def __init__(self, settings: ServiceSettings, plant: Plant, group: str, run: str) -> None:
        self._settings = settings
        self._group = group
        # Twins are named per run: runs sharing a broker never see each other's machines.
        self.twin = f"-twin-{run}"
        twins = tuple(
            m.model_copy(update={"machine_id": m.machine_id + self.twin}) for m in plant.machines
        )
        self.plant = replace(plant, machines=plant.machines + twins)
        self.machine_ids = [m.machine_id for m in self.plant.machines]
        # The twins go DOWN: every capability keeps a machine, and no other publisher on the
        # shared topics (a demo, the chaos run) changes their state.
        self.busy = [m for m in self.machine_ids if m.endswith(self.twin)]
        self._producer = make_producer(settings, role="bench")

    async def start(self) -> None:
        """The service's group starts at the end of the event topics: earlier runs' orders and
        states are not this run's (master data it reads from the beginning)."""
        await self._producer.start()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            group_id=self._group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            tps: list[TopicPartition] = []
            for topic in (t for t in TOPICS if not t.startswith("masterdata.")):
                parts = consumer.partitions_for_topic(topic)
                while not parts:
                    await consumer._client.force_metadata_update()
                    parts = consumer.partitions_for_topic(topic)
                tps += [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.commit(dict((await consumer.end_offsets(tps)).items()))
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        await self._producer.stop()

    async def machines(self) -> None:
        await publish_plant(self._settings, self.plant)

    async def withdraw(self) -> None:
        """Tombstones for the twins: the shared topic keeps only the sample plant."""
        for machine_id in self.machine_ids:
            if machine_id.endswith(self.twin):
                await self._producer.send_and_wait(MACHINES, None, key=machine_id.encode())

    async def _send(self, topic: str, key: str, event: Contract) -> int:
        envelope = new_event(topic=topic, service="bench", subject=key)
        meta = await self._producer.send_and_wait(
            topic,
            orjson.dumps(event.model_dump(mode="json")),
            key=key.encode(),
            headers=envelope.headers(),
        )
        return int(meta.timestamp)

    async def orders(self, rng: random.Random, count: int, due: date) -> int:
        """``count`` one-line orders; the last one's append time."""
        skus = [p.sku for p in self.plant.products]
        run = rng.getrandbits(32)
        last = 0
        for n in range(count):
            order = OrderPlaced(
                order_id=f"bench-{run:08x}-{n:04d}",
                customer="bench",
                lines=[
                    OrderLine(
                        line_no=1, sku=rng.choice(skus), quantity=rng.randint(1, 4), operations=1
                    )
                ],
                due_date=due + timedelta(days=rng.randint(0, 3)),
                priority=rng.choice(list(Priority)),
                status=OrderStatus.ACCEPTED,
                total_minor=0,
                currency="EUR",
                placed_at=datetime.now(UTC),
            )
            last = await self._send(PLACED, order.order_id, order)
        return last

    async def state(self, machine_id: str, state: str) -> int:
        """A machine-state change now; its append time (epoch ms)."""
        event = MachineState(
            machine_id=machine_id,
            state=MachineStateName(state),
            since=int(datetime.now(UTC).timestamp() * 1000),
        )
        return await self._send(STATES, machine_id, event)
