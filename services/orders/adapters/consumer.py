"""The lifecycle consumer: each record in its own unit of work, offsets committed after.

Order of effects per record: decode, then one transaction that inserts the event into the
inbox and, only on first delivery, applies it. Every stage runs under
:func:`shared.poison.isolate`: a record that makes any of them raise (a bad envelope, a
schema-invalid value, a handler or the domain refusing it, SQL its data breaks) has its
transaction rolled back and is dead-lettered, and the records after it are applied; an outage
of Kafka or PostgreSQL is re-raised, so the supervisor rebuilds the consumer and resumes from
the committed offsets. Offsets of a batch are committed once every record of the batch is
durable or dead-lettered; a crash in between redelivers records whose inbox rows make them
no-ops. The product and customer views are idempotent upserts keyed by id (a tombstone
deletes), so they need no inbox; they are caught up before lifecycle events are taken.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from contracts.base import Contract
from contracts.envelope import EnvelopeError, parse_headers
from contracts.masterdata import Customer, Product
from services.orders import metrics as m
from services.orders.adapters.postgres import UnitOfWork
from services.orders.handlers import CUSTOMERS_TOPIC, LIFECYCLE, PRODUCTS_TOPIC, Handler
from shared.dlq import DlqPublisher, InvalidMessageError
from shared.logging import get_logger
from shared.poison import isolate

TOPICS = (PRODUCTS_TOPIC, CUSTOMERS_TOPIC, *LIFECYCLE)
log = get_logger(__name__)
Hook = Callable[[], Awaitable[None]]
C = TypeVar("C", bound=Contract)


async def _nothing() -> None:
    return None


def _decode(model: type[C], value: bytes | None) -> C:
    try:
        return model.model_validate_json(value or b"")
    except ValidationError as exc:
        raise InvalidMessageError("schema", str(exc)) from exc


class LifecycleConsumer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        consumer: AIOKafkaConsumer,
        dlq: DlqPublisher,
        *,
        handlers: Mapping[str, tuple[type[Contract], Handler]] = LIFECYCLE,
        after_db_commit: Hook = _nothing,
    ) -> None:
        self._pool = pool
        self._consumer = consumer
        self._dlq = dlq
        self._handlers = handlers
        self._after_db_commit = after_db_commit
        self.healthy = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop``; raise on an outage so the supervisor rebuilds and resumes
        from the committed offsets."""
        self.healthy = True
        while not stop.is_set():
            batch = await self._consumer.getmany(
                *await self._views_behind(), timeout_ms=200, max_records=500
            )
            for tp, records in batch.items():
                handled = -1
                try:
                    for record in records:
                        await self.process(record)
                        handled = record.offset
                except Exception:
                    # An outage: keep what is done (applied or dead-lettered) so the next life
                    # starts at the record that met it; if Kafka is what failed, it redelivers.
                    if handled >= 0:
                        with contextlib.suppress(Exception):
                            await self._consumer.commit({tp: handled + 1})
                    raise
                await self._after_db_commit()
                await self._consumer.commit({tp: records[-1].offset + 1})

    async def _views_behind(self) -> list[TopicPartition]:
        """The product and customer partitions that hold records not applied yet, as the last
        fetch saw them: they are fetched alone until none is left (an empty list: all). A
        backlog of lifecycle events (a new group, a long outage) would otherwise hold back a
        new product or customer, and every order for it would be refused (422) meanwhile."""
        behind = []
        for tp in self._consumer.assignment():
            if tp.topic in (PRODUCTS_TOPIC, CUSTOMERS_TOPIC):
                end = self._readable_end(tp)
                if end is not None and await self._consumer.position(tp) < end:
                    behind.append(tp)
        return behind

    def _readable_end(self, tp: TopicPartition) -> int | None:
        """Where the last fetch saw the partition end for this consumer: the high-water mark,
        or under read_committed the last stable offset when lower (records of an open
        transaction are not readable yet; waiting for them would starve the lifecycle)."""
        ends = (self._consumer.highwater(tp), self._consumer.last_stable_offset(tp))
        known = [e for e in ends if e is not None and e >= 0]
        return min(known) if known else None

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record, or dead-letter it if it is poison (then its offset may be
        committed: the DLQ has acknowledged the copy)."""
        if await isolate(record, lambda: self._apply(record), self._dlq, log=log) is not None:
            m.CONSUMED.labels(record.topic, "dlq").inc()

    async def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.topic in (PRODUCTS_TOPIC, CUSTOMERS_TOPIC):
            await self._view(record)
            return
        try:
            envelope = parse_headers(list(record.headers))
        except EnvelopeError as exc:
            raise InvalidMessageError("envelope", str(exc)) from exc
        model, handler = self._handlers[record.topic]
        event = _decode(model, record.value)
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

    async def _view(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Keep the local product or customer view: upsert, or delete on a tombstone."""
        products = record.topic == PRODUCTS_TOPIC
        async with UnitOfWork(self._pool) as uow:
            if record.value is None:
                if record.key:
                    key = record.key.decode("utf-8", "replace")
                    await (uow.drop_product(key) if products else uow.drop_customer(key))
                outcome = "tombstone"
            else:
                if products:
                    await uow.put_product(_decode(Product, record.value))
                else:
                    await uow.put_customer(_decode(Customer, record.value))
                outcome = "applied"
            await uow.commit()
        m.CONSUMED.labels(record.topic, outcome).inc()
