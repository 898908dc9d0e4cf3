"""The lifecycle consumer: each record in its own unit of work, offsets committed after.

Order of effects per record: decode (poison goes to the DLQ), then one transaction that
inserts the event into the inbox and, only on first delivery, applies it. Offsets of a batch
are committed once every record of the batch is durable; a crash in between redelivers
records whose inbox rows make them no-ops. The product view is an idempotent upsert keyed by
sku (a tombstone deletes it), so it needs no inbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import ValidationError

from contracts.envelope import EnvelopeError, parse_headers
from contracts.masterdata import Product
from services.orders import metrics as m
from services.orders.adapters.postgres import UnitOfWork
from services.orders.handlers import LIFECYCLE, PRODUCTS_TOPIC
from shared.dlq import DlqPublisher, InvalidMessageError
from shared.logging import get_logger

TOPICS = (PRODUCTS_TOPIC, *LIFECYCLE)
log = get_logger(__name__)
Hook = Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


class LifecycleConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        dlq: DlqPublisher,
        *,
        after_db_commit: Hook = _nothing,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._dlq = dlq
        self._after_db_commit = after_db_commit
        self.healthy = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; raise on an outage so the supervisor rebuilds and resumes
        from the committed offsets."""
        self.healthy = True
        while not stop.is_set():
            batch = await self._consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    await self.process(record)
                await self._after_db_commit()
                await self._consumer.commit({tp: records[-1].offset + 1})

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            await self._apply(record)
        except InvalidMessageError as err:
            m.CONSUMED.labels(record.topic, "dlq").inc()
            log.warning("poison record", topic=record.topic, offset=record.offset, error=str(err))
            await (await self._dlq.send(record, err))

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.topic == PRODUCTS_TOPIC:
            await self._product(record)
            return
        try:
            envelope = parse_headers(list(record.headers))
        except EnvelopeError as exc:
            raise InvalidMessageError("envelope", str(exc)) from exc
        model, handler = LIFECYCLE[record.topic]
        try:
            event = model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise InvalidMessageError("schema", str(exc)) from exc
        async with UnitOfWork(self._pool) as uow:
            if await uow.first_delivery(f"{envelope.source} {envelope.id}", record.topic):
                outcome = await handler(event, record.topic, uow)
            else:
                outcome = "duplicate"
            await uow.commit()
        m.CONSUMED.labels(record.topic, outcome).inc()
        log.debug(
            "consumed",
            topic=record.topic,
            offset=record.offset,
            event_id=envelope.id,
            outcome=outcome,
        )

    async def _product(self, record: ConsumerRecord[bytes, bytes]) -> None:
        async with UnitOfWork(self._pool) as uow:
            if record.value is None:
                if record.key:
                    await uow.drop_product(record.key.decode("utf-8", "replace"))
                outcome = "tombstone"
            else:
                try:
                    product = Product.model_validate_json(record.value)
                except ValidationError as exc:
                    raise InvalidMessageError("schema", str(exc)) from exc
                await uow.put_product(product)
                outcome = "applied"
            await uow.commit()
        m.CONSUMED.labels(record.topic, outcome).inc()
