"""Delivery guarantees of the orders service on real PostgreSQL and Kafka: CloudEvents on
Kafka, a relay crash between publish and mark, a consumer crash between DB commit and offset
commit, and lifecycle events in any order."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import TopicPartition
from support.orders import (
    ACME_TOKEN,
    FailOnce,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
    order_body,
    publish_lifecycle,
    running,
    wait_for,
)
from support.telemetry import TopicReader, end_offsets

from contracts.envelope import derived_id
from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OperationScheduled
from services.orders.settings import OrdersSettings

ORDER_TOPICS = (
    "orders.order-placed.v1",
    "orders.order-cancelled.v1",
    "orders.order-status-changed.v1",
)


@pytest.fixture
async def settings(database_url: str, kafka_bootstrap: str) -> OrdersSettings:
    await ensure_manifest_topics(kafka_bootstrap)
    return make_settings(await fresh_database(database_url), kafka_bootstrap)


async def order_offsets(kafka: str) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for topic in ORDER_TOPICS:
        out |= await end_offsets(kafka, topic)
    return out


async def place(client: httpx.AsyncClient, key: str, **body: Any) -> dict[str, Any]:
    headers = bearer(ACME_TOKEN) | {"Idempotency-Key": key}
    r = await client.post("/v1/orders", json=order_body(**body), headers=headers)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def events_of(reader: TopicReader, order_ids: set[str]) -> list[tuple[dict[str, str], Any]]:
    return [(h, d) for h, d in reader.decoded() if h.get("ce_subject") in order_ids]


async def unsent(settings: OrdersSettings) -> int:
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def test_events_carry_cloudevents_headers_and_deterministic_ids(
    settings: OrdersSettings, kafka_bootstrap: str
) -> None:
    start = await order_offsets(kafka_bootstrap)
    async with running(settings) as client:
        await load_sample_plant(settings)
        order = await place(client, "ce-1")
        oid = order["order_id"]
        cancel = await client.post(f"/v1/orders/{oid}/cancel", headers=bearer(ACME_TOKEN))
        assert cancel.status_code == 200
        async with TopicReader(kafka_bootstrap, start) as reader:
            await reader.poll_until(lambda _: len(events_of(reader, {oid})) >= 3, 30)
            got = events_of(reader, {oid})
    by_type = {h["ce_type"]: (h, d) for h, d in got}
    placed_h, placed = by_type["io.millrace.orders.order-placed.v1"]
    assert placed_h["ce_id"] == derived_id("orders", oid, 0)
    assert placed_h["ce_source"] == "/millrace/orders"
    assert placed_h["ce_specversion"] == "1.0"
    assert placed_h["content-type"] == "application/json"
    assert placed_h["ce_dataschema"] == "urn:millrace:schema:orders.order-placed.v1"
    assert placed["total_minor"] == order["total_minor"]
    changed_h, changed = by_type["io.millrace.orders.order-status-changed.v1"]
    assert (changed["previous"], changed["status"]) == ("accepted", "cancelled")
    assert changed_h["ce_id"] == derived_id("orders", oid, 1)
    assert by_type["io.millrace.orders.order-cancelled.v1"][0]["ce_id"] == derived_id(
        "orders", oid, 2
    )


async def test_relay_crash_between_publish_and_mark_loses_nothing(
    settings: OrdersSettings, kafka_bootstrap: str
) -> None:
    crash = FailOnce(times=2)
    start = await order_offsets(kafka_bootstrap)
    async with running(settings, after_publish=crash) as client:
        await load_sample_plant(settings)
        ids = set()
        for i in range(10):
            order = await place(client, f"relay-{i}")
            ids.add(order["order_id"])
            r = await client.post(
                f"/v1/orders/{order['order_id']}/cancel", headers=bearer(ACME_TOKEN)
            )
            assert r.status_code == 200
        await wait_for(lambda: _zero(settings), 30, "the outbox to drain")
        async with TopicReader(kafka_bootstrap, start) as reader:
            want = {derived_id("orders", oid, n) for oid in ids for n in range(3)}
            await reader.poll_until(
                lambda _: want <= {h["ce_id"] for h, _ in events_of(reader, ids)}, 30
            )
            first_sent: dict[str, int] = {}
            for record in reader.records:
                headers = {k: v.decode() for k, v in record.headers}
                if headers.get("ce_subject") in ids:
                    first_sent.setdefault(headers["ce_id"], record.timestamp)
    assert crash.calls > 2
    assert set(first_sent) == want
    for oid in ids:
        stamps = [first_sent[derived_id("orders", oid, n)] for n in range(3)]
        assert stamps == sorted(stamps), "published in outbox order per order id"


async def _zero(settings: OrdersSettings) -> bool:
    return await unsent(settings) == 0


def work(oid: str, line: int, seq: int) -> dict[str, Any]:
    return {
        "work_order_id": f"{oid}/{line}",
        "order_id": oid,
        "line_no": line,
        "operation_seq": seq,
    }


def lifecycle(oid: str, ops: dict[int, list[int]]) -> list[tuple[str, Any]]:
    """Every scheduled/started/completed event of every operation, completions first and
    in reverse: the least convenient order."""
    now = int(time.time() * 1000)
    out: list[tuple[str, Any]] = []
    for line, seqs in ops.items():
        for seq in reversed(seqs):
            out.append(
                (
                    "production.operation-completed.v1",
                    OperationCompleted(
                        **work(oid, line, seq), machine_id="cnc-01", ts=now, quantity_good=2
                    ),
                )
            )
            out.append(
                (
                    "production.operation-started.v1",
                    OperationStarted(**work(oid, line, seq), machine_id="cnc-01", ts=now),
                )
            )
            out.append(
                (
                    "scheduling.operation-scheduled.v1",
                    OperationScheduled(
                        **work(oid, line, seq),
                        sku="x",
                        machine_id="cnc-01",
                        planned_start=now,
                        planned_end=now + 1000,
                    ),
                )
            )
    return out


ROUTES = {1: [10, 20, 30, 40, 50], 2: [10, 20, 30]}  # frame-road and stem-cnc of order_body()


async def test_lifecycle_out_of_order_completes_once(
    settings: OrdersSettings, kafka_bootstrap: str
) -> None:
    start = await order_offsets(kafka_bootstrap)
    async with running(settings) as client:
        await load_sample_plant(settings)
        oid = (await place(client, "life-1"))["order_id"]
        events = lifecycle(oid, ROUTES)
        await publish_lifecycle(kafka_bootstrap, events)

        async def done() -> dict[str, Any] | None:
            r = await client.get(f"/v1/orders/{oid}", headers=bearer(ACME_TOKEN))
            body: dict[str, Any] = r.json()
            return body if len(body["timeline"]) == 2 + len(events) + 2 else None

        view = await wait_for(done, 30, "every lifecycle event in the timeline")
        assert view["status"] == "completed"
        async with TopicReader(kafka_bootstrap, start) as reader:
            await reader.poll_until(lambda _: len(events_of(reader, {oid})) >= 3, 30)
            changes = [
                (d["previous"], d["status"])
                for h, d in events_of(reader, {oid})
                if h["ce_type"].endswith("order-status-changed.v1")
            ]
    assert changes == [("accepted", "in_production"), ("in_production", "completed")]
    cancel = await client_cancel_after_close(settings, oid)
    assert cancel == 409


async def client_cancel_after_close(settings: OrdersSettings, oid: str) -> int:
    async with running(settings) as client:
        r = await client.post(f"/v1/orders/{oid}/cancel", headers=bearer(ACME_TOKEN))
        return r.status_code


async def test_consumer_crash_between_db_commit_and_offset_commit_applies_nothing_twice(
    settings: OrdersSettings, kafka_bootstrap: str
) -> None:
    async with running(settings) as client:
        await load_sample_plant(settings)
        oid = (await place(client, "crash-1"))["order_id"]
    crash = FailOnce(times=3)
    async with running(settings, after_db_commit=crash) as client:
        events = lifecycle(oid, ROUTES)
        await publish_lifecycle(kafka_bootstrap, events)

        async def settled() -> dict[str, Any] | None:
            r = await client.get(f"/v1/orders/{oid}", headers=bearer(ACME_TOKEN))
            body: dict[str, Any] = r.json()
            ops = [e for e in body["timeline"] if e["kind"].startswith("operation-")]
            return body if len(ops) >= len(events) and crash.left == 0 else None

        view = await wait_for(settled, 60, "the consumer to recover")
        metrics = (await client.get("/metrics")).text
    ops = [e for e in view["timeline"] if e["kind"].startswith("operation-")]
    assert len(ops) == len(events)
    keys = [(e["kind"], e["line_no"], e["operation_seq"]) for e in ops]
    assert len(set(keys)) == len(keys)
    assert view["status"] == "completed"
    assert crash.calls > 3
    duplicates = [
        line
        for line in metrics.splitlines()
        if line.startswith("millrace_orders_consumed_total{") and 'outcome="duplicate"' in line
    ]
    assert duplicates
    assert any(float(line.rsplit(" ", 1)[1]) > 0 for line in duplicates)
