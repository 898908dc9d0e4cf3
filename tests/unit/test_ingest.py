"""HTTP ingest handler on FastStream's in-memory broker: what a POST publishes, and every
rejection a sender can get."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker

from contracts.envelope import parse_headers
from services.telemetry.app import create_app
from services.telemetry.settings import TelemetrySettings

TOKEN = "s3cret-token"


READING = '{{"device_id":"d","readings":[{{"metric":"m","ts":1,"value":{}}}]}}'


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
async def published() -> AsyncIterator[tuple[httpx.AsyncClient, list[KafkaMessage]]]:
    settings = TelemetrySettings(
        telemetry_ingest_token_sha256=[hashlib.sha256(TOKEN.encode()).hexdigest()],
        telemetry_ingest_max_body_bytes=8192,
    )
    broker = KafkaBroker()
    seen: list[KafkaMessage] = []

    @broker.subscriber("telemetry.readings.v1", ack_policy=AckPolicy.ACK)
    async def capture(body: dict[str, Any], msg: KafkaMessage) -> None:
        seen.append(msg)

    app = create_app(settings, broker=broker, aggregator=False)
    async with TestKafkaBroker(broker):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            client.headers["Authorization"] = f"Bearer {TOKEN}"
            yield client, seen


def batch(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "device_id": "press-07",
        "readings": [{"metric": "spindle_temp_c", "ts": now_ms(), "value": 71.5}],
    }
    body.update(over)
    return body


async def test_accepted_batch_is_published_as_cloudevent(published: Any) -> None:
    client, seen = published
    body = batch()
    resp = await client.post("/v1/readings", json=body)
    assert resp.status_code == 202, resp.text
    [msg] = seen
    assert msg.raw_message.key == b"press-07"
    data = orjson.loads(msg.body)
    assert data["device_id"] == "press-07"
    assert data["readings"][0] == {**body["readings"][0], "quality": "good"}
    ce = parse_headers(list(msg.raw_message.headers))
    assert ce.type == "io.millrace.telemetry.readings.v1"
    assert ce.source == "/millrace/telemetry"
    assert ce.subject == "press-07"
    assert ce.id == resp.json()["event_id"]
    assert dict(msg.raw_message.headers)["content-type"] == b"application/json"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":NaN}]}', "value"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":1e400}]}', "value"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1.5,"value":1}]}', "ts"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":true}]}', "value"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":"1"}]}', "value"),
        ('{"device_id":"d","readings":[]}', "readings"),
        ('{"device_id":"","readings":[{"metric":"m","ts":1,"value":1}]}', "device_id"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":1,"x":2}]}', "x"),
        ('{"device_id":"d","extra":1,"readings":[{"metric":"m","ts":1,"value":1}]}', "extra"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":1,"quality":"x"}]}', "quality"),
        ('{"device_id":"d","readings":[{"metric":"m","ts":1,"value":-Infinity}]}', "value"),
        # beyond 64 bits: the record could not be encoded (this was a 500)
        (READING.format(2**63), "64 bits"),
        (READING.format(-(2**63) - 1), "64 bits"),
        (READING.format(10**400), "value"),
    ],
)
async def test_bad_input_gets_422_with_the_reason_and_publishes_nothing(
    published: Any, body: str, where: str
) -> None:
    client, seen = published
    resp = await client.post(
        "/v1/readings", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    assert where in resp.text
    assert seen == []


async def test_largest_64_bit_integers_are_accepted(published: Any) -> None:
    client, seen = published
    for value in (2**63 - 1, -(2**63)):
        body = batch(readings=[{"metric": "m", "ts": now_ms(), "value": value}])
        resp = await client.post("/v1/readings", json=body)
        assert resp.status_code == 202, resp.text
    assert [orjson.loads(m.body)["readings"][0]["value"] for m in seen] == [2**63 - 1, -(2**63)]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"device_id":"d","readings":[{"metric":"\xff","ts":1,"value":1}]}',
        b"[" * 2_000 + b"]" * 2_000,
        b"9" * 4_301,  # more digits than Python converts
        b'{"device_id":"d",',
    ],
    ids=["text", "invalid-utf8", "deeply-nested", "4301-digits", "truncated"],
)
async def test_a_body_that_is_not_json_is_400(published: Any, body: bytes) -> None:
    client, seen = published
    resp = await client.post(
        "/v1/readings", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"]
    assert seen == []


async def test_reading_from_the_future_is_refused(published: Any) -> None:
    client, seen = published
    ahead = now_ms() + 3_600_000
    body = batch(readings=[{"metric": "m", "ts": ahead, "value": 1}])
    resp = await client.post("/v1/readings", json=body)
    assert resp.status_code == 422
    assert "ahead of the server clock" in resp.json()["detail"]
    assert seen == []


async def test_missing_or_wrong_token_is_401(published: Any) -> None:
    client, seen = published
    resp = await client.post("/v1/readings", json=batch(), headers={"Authorization": ""})
    assert resp.status_code == 401
    resp = await client.post("/v1/readings", json=batch(), headers={"Authorization": "Bearer x"})
    assert resp.status_code == 401
    assert seen == []


async def test_body_over_limit_is_413(published: Any) -> None:
    client, seen = published
    readings = [{"metric": "m", "ts": now_ms(), "value": i} for i in range(200)]
    resp = await client.post("/v1/readings", json=batch(readings=readings))
    assert resp.status_code == 413
    assert "exceeds" in resp.text
    assert seen == []


async def test_healthz_and_metrics(published: Any) -> None:
    client, _ = published
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    await client.post("/v1/readings", json=batch())
    text = (await client.get("/metrics")).text
    assert "millrace_telemetry_ingest_requests_total" in text
