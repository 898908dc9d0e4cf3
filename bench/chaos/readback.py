"""Reading back what the run left: whole topics with a plain Kafka consumer (no group, no
Millrace code), consumer groups' committed offsets, and the services' tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.chaos.orders import OrderRow
from bench.chaos.records import Rec
from bench.chaos.scheduling import Stored


async def read_topics(bootstrap: str, topics: Iterable[str]) -> list[Rec]:
    """Every record of ``topics`` from the beginning to the end offsets of this moment."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        tps = []
        for topic in topics:
            parts = await _partitions(consumer, topic)
            tps += [TopicPartition(topic, p) for p in sorted(parts)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        left = {tp for tp, end in ends.items() if end > 0}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Rec] = []
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000)
            for tp, records in batch.items():
                out.extend(
                    Rec(tp.topic, tp.partition, r.offset, r.key, r.value, dict(r.headers))
                    for r in records
                    if r.offset < ends[tp]
                )
            # The position, not the last offset: control records take offsets too.
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
        return out
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    return set(parts or ())


async def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Records of ``topics`` beyond the group's committed offsets (a partition it never
    committed counts whole)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        tps = []
        for topic in topics:
            tps += [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
        ends = await consumer.end_offsets(tps)
        return sum(
            max(0, end - (committed[tp].offset if tp in committed else 0))
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def unsent(url: str, schema: str) -> int:
    rows = await _fetch(url, f"SELECT count(*) AS n FROM {schema}.outbox WHERE sent_at IS NULL")
    return int(rows[0]["n"])


async def pending_triggers(url: str) -> int:
    return int((await _fetch(url, "SELECT count(*) AS n FROM scheduling.triggers"))[0]["n"])


async def order_rows(url: str) -> dict[str, OrderRow]:
    rows = await _fetch(url, "SELECT order_id, status, event_seq FROM orders.orders")
    return {r["order_id"]: OrderRow(r["status"], int(r["event_seq"])) for r in rows}


async def latest_plan(url: str, plan_id: str = "plant") -> tuple[int, list[Stored]]:
    head = await _fetch(
        url, "SELECT max(version) AS v FROM scheduling.plans WHERE plan_id = $1", plan_id
    )
    version = int(head[0]["v"] or 0)
    rows = await _fetch(
        url,
        "SELECT work_order_id, seq, machine_id, start_s, end_s FROM scheduling.plan_assignments"
        " WHERE plan_id = $1 AND version = $2",
        plan_id,
        version,
    )
    return version, [
        Stored(r["work_order_id"], r["seq"], r["machine_id"], r["start_s"], r["end_s"])
        for r in rows
    ]
