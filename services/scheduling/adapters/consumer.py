"""The scheduling consumer: each record in its own unit of work, offsets committed after.

Per record: decode (poison goes to the DLQ with provenance, the partition moves on), then one
transaction that inserts the event into the inbox and, only on first delivery, applies it and
records the re-plan trigger it causes. A partition's offsets are committed once its records
are durable; a crash in between redelivers records whose inbox rows make them no-ops. Master
data are idempotent upserts keyed by id (a tombstone deletes), so they need no inbox.
"""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import ValidationError

from contracts.envelope import EnvelopeError, parse_headers
from contracts.masterdata import Machine, Product
from services.scheduling import metrics as m
from services.scheduling.adapters.postgres import UnitOfWork
from services.scheduling.domain.triggers import Trigger
from services.scheduling.handlers import EVENTS, MACHINES_TOPIC, PRODUCTS_TOPIC, Context
from shared.dlq import DlqPublisher, InvalidMessageError
from shared.logging import get_logger
from shared.poison import isolate

TOPICS = (MACHINES_TOPIC, PRODUCTS_TOPIC, *EVENTS)
log = get_logger(__name__)


class SchedulingConsumer:
    def __init__(
        self, pool: asyncpg.Pool, consumer: AIOKafkaConsumer, dlq: DlqPublisher, ctx: Context
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._dlq = dlq
        self._ctx = ctx

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; raise on an outage so the supervisor rebuilds and resumes
        from the committed offsets."""
        while not stop.is_set():
            batch = await self._consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batch.items():
                for record in records:
                    await self.process(record)
                await self._consumer.commit({tp: records[-1].offset + 1})

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if await isolate(record, lambda: self._apply(record), self._dlq, log=log) is not None:
            m.CONSUMED.labels(record.topic, "dlq").inc()

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.topic in (MACHINES_TOPIC, PRODUCTS_TOPIC):
            outcome = await self._master(record)
        else:
            outcome = await self._event(record)
        m.CONSUMED.labels(record.topic, outcome).inc()

    async def _event(self, record: ConsumerRecord[bytes, bytes]) -> str:
        try:
            envelope = parse_headers(list(record.headers))
        except EnvelopeError as exc:
            raise InvalidMessageError("envelope", str(exc)) from exc
        model, handler = EVENTS[record.topic]
        try:
            event = model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise InvalidMessageError("schema", str(exc)) from exc
        async with UnitOfWork(self._pool) as uow:
            if await uow.first_delivery(f"{envelope.source} {envelope.id}", record.topic):
                outcome = await handler(event, uow, self._ctx)
            else:
                outcome = "duplicate"
            await uow.commit()
        log.debug("consumed", topic=record.topic, offset=record.offset, outcome=outcome)
        return outcome

    async def _master(self, record: ConsumerRecord[bytes, bytes]) -> str:
        key = (record.key or b"").decode("utf-8", "replace")
        async with UnitOfWork(self._pool) as uow:
            if record.value is None:
                outcome = "tombstone"
                if record.topic == MACHINES_TOPIC:
                    changed = await uow.drop_machine(key)
                else:
                    changed = await uow.drop_product(key)
            else:
                outcome = "applied"
                try:
                    if record.topic == MACHINES_TOPIC:
                        changed = await uow.put_machine(Machine.model_validate_json(record.value))
                    else:
                        changed = await uow.put_product(Product.model_validate_json(record.value))
                except ValidationError as exc:
                    raise InvalidMessageError("schema", str(exc)) from exc
            if changed:
                await uow.trigger(Trigger.MASTERDATA, f"{record.topic} {key}")
            await uow.commit()
        return outcome
