"""Poison injected on purpose, each record's (topic, partition, offset) kept: undecodable and
schema-invalid readings, and a lifecycle event the shop floor could never have sent."""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaProducer

from bench.chaos.dlq import Poison
from contracts.envelope import new_event

READINGS = "telemetry.readings.v1"
COMPLETED = "production.operation-completed.v1"

TELEMETRY_POISON: tuple[tuple[str, bytes], ...] = (
    ("undecodable", b"\xff\xfe\x00 not json"),
    ("no_readings", orjson.dumps({"device_id": "chaos-poison", "readings": []})),
    ("ts_not_a_number", orjson.dumps(
        {"device_id": "chaos-poison", "readings": [{"metric": "m0", "ts": "soon", "value": 1}]}
    )),
)  # fmt: skip
# A completed operation naming no order, line or machine: schema-invalid for both consumers.
LIFECYCLE_POISON = orjson.dumps({"work_order_id": "chaos-bad", "operation_seq": "first"})


async def inject(producer: AIOKafkaProducer, round_no: int) -> list[Poison]:
    out = []
    for kind, value in TELEMETRY_POISON:
        md = await producer.send_and_wait(READINGS, value, key=b"chaos-poison")
        out.append(Poison(READINGS, md.partition, md.offset, f"{kind}#{round_no}"))
    envelope = new_event(topic=COMPLETED, service="simulator", subject="chaos-bad")
    md = await producer.send_and_wait(
        COMPLETED, LIFECYCLE_POISON, key=b"chaos-bad", headers=envelope.headers()
    )
    out.append(Poison(COMPLETED, md.partition, md.offset, f"lifecycle_schema_invalid#{round_no}"))
    return out
