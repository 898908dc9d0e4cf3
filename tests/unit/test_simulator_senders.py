"""Senders and the in-process run API, with httpx.MockTransport and a fake Kafka producer."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import orjson

from contracts.envelope import parse_headers
from contracts.telemetry import ReadingsBatch
from millrace.simulator import BatchBuilder, Message, SimulatorConfig, generate, run_simulation
from millrace.simulator.metrics import serve_metrics
from millrace.simulator.report import Tally
from millrace.simulator.senders import HttpSender, KafkaSender

START = 1_732_262_400_000
TOPIC = "telemetry.readings.v1"
URL = "http://ingest.test/v1/readings"


def messages(n: int = 4) -> list[Message]:
    cfg = SimulatorConfig(devices=n, metrics=2, rate=0, tick_ms=1000, start_ms=START, count=100)
    return BatchBuilder(cfg).tick(0)


async def no_sleep(_: float) -> None:
    return None


def http_sender(handler: Any, tally: Tally, **kw: Any) -> HttpSender:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpSender(client, URL, tally, sleep=no_sleep, **kw)


async def test_http_posts_json_with_bearer_token_and_cloudevents_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"ok": True})

    tally = Tally(record=True)
    sender = http_sender(handler, tally, token="s3cret")
    await sender.send(messages())
    await sender.close()
    assert len(seen) == 4
    for request in seen:
        assert request.headers["authorization"] == "Bearer s3cret"
        assert request.headers["ce-type"] == "io.millrace.telemetry.readings.v1"
        assert request.headers["ce-source"] == "/millrace/simulator"
        batch = ReadingsBatch.model_validate_json(request.content)
        assert request.headers["ce-subject"] == batch.device_id
    assert tally.readings["http"] == 8
    assert {b.device_id for b in tally.batches} == {m.device_id for m in messages()}


async def test_http_retries_5xx_and_connection_errors_with_the_same_event_id() -> None:
    attempts: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        device = orjson.loads(request.content)["device_id"]
        attempts[device] += 1
        ids.setdefault(device, set()).add(request.headers["ce-id"])
        if attempts[device] == 1:
            raise httpx.ConnectError("refused", request=request)
        if attempts[device] == 2:
            return httpx.Response(503)
        return httpx.Response(200)

    tally = Tally()
    sender = http_sender(handler, tally, max_attempts=5)
    await sender.send(messages())
    assert set(attempts.values()) == {3}
    assert all(len(v) == 1 for v in ids.values())
    assert tally.messages["http"] == 4
    assert tally.errors == Counter({("http", "ConnectError"): 4, ("http", "http_503"): 4})


async def test_http_4xx_is_counted_and_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"detail": "readings.0.ts too far ahead"})

    tally = Tally()
    await http_sender(handler, tally).send(messages(2))
    assert calls == 2
    assert tally.errors == Counter({("http", "http_422"): 2})
    assert tally.readings["http"] == 0


async def test_http_gives_up_after_max_attempts() -> None:
    tally = Tally()
    sender = http_sender(lambda r: httpx.Response(500), tally, max_attempts=3)
    await sender.send(messages(1))
    assert tally.errors == Counter({("http", "http_500"): 3, ("http", "gave_up"): 1})


async def test_http_concurrency_is_bounded() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    tally = Tally()
    sender = HttpSender(client, URL, tally, concurrency=3)
    await sender.send(messages(10))
    assert peak == 3
    assert tally.messages["http"] == 10


class FakeProducer:
    """Records sends; deliveries resolve later, failing the first ``fail_first`` of them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.unresolved_at_send: list[int] = []
        self.futures: list[asyncio.Future[None]] = []
        self.flushed = self.stopped = False

    async def send(self, topic: str, **kw: Any) -> asyncio.Future[None]:
        self.unresolved_at_send.append(sum(not f.done() for f in self.futures))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(self.sent) < self.fail_first:
            future.set_exception(TimeoutError("no ack"))
        else:
            asyncio.get_running_loop().call_soon(future.set_result, None)
        self.sent.append({"topic": topic, **kw})
        self.futures.append(future)
        return future

    async def flush(self) -> None:
        self.flushed = True

    async def stop(self) -> None:
        self.stopped = True


async def test_kafka_enqueues_a_tick_before_awaiting_acks() -> None:
    producer, tally = FakeProducer(), Tally(record=True)
    sender = KafkaSender(producer, TOPIC, tally)
    batch = messages(5)
    await sender.send(batch)
    await sender.close()
    assert producer.unresolved_at_send == [0, 1, 2, 3, 4]
    assert producer.flushed
    assert producer.stopped
    for record, message in zip(producer.sent, batch, strict=True):
        assert record["key"] == message.device_id.encode()
        assert orjson.loads(record["value"]) == message.batch
        event = parse_headers(record["headers"])
        assert event.subject == message.device_id
        assert event.dataschema == "urn:millrace:schema:telemetry.readings.v1"
    assert tally.readings["kafka"] == 10


async def test_kafka_retries_failed_deliveries_with_the_same_event_id() -> None:
    producer, tally = FakeProducer(fail_first=2), Tally()
    sender = KafkaSender(producer, TOPIC, tally, sleep=no_sleep)
    await sender.send(messages(3))
    assert len(producer.sent) == 5
    first, retried = producer.sent[:2], producer.sent[3:]
    assert [dict(r["headers"])["ce_id"] for r in first] == [
        dict(r["headers"])["ce_id"] for r in retried
    ]
    assert tally.messages["kafka"] == 3
    assert tally.errors == Counter({("kafka", "TimeoutError"): 2})


async def test_run_simulation_over_http_records_exactly_the_generated_batches() -> None:
    cfg = SimulatorConfig(
        devices=5, metrics=3, rate=0, start_ms=START, count=600, transport="http", record=True
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(202)))
    report = await run_simulation(cfg, http_client=client)
    assert report.readings_sent == {"http": 600}
    assert report.readings_generated == 600
    assert not report.errors
    got = sorted((b.device_id, orjson.dumps(b.batch)) for b in report.batches)
    assert got == sorted((d, orjson.dumps(b)) for d, b in generate(cfg))
    assert "600/600 readings sent" in report.summary()


async def test_run_simulation_stops_when_asked() -> None:
    cfg = SimulatorConfig(devices=2, metrics=1, rate=1000, tick_ms=10, transport="http")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulation(cfg, http_client=client, stop=stop))
    await asyncio.sleep(0.2)
    stop.set()
    report = await asyncio.wait_for(task, 5)
    assert 50 <= report.readings_sent["http"] <= 400
    assert report.readings_sent["http"] == report.readings_generated


async def test_metrics_server_serves_healthz_and_counters() -> None:
    cfg = SimulatorConfig(devices=1, metrics=1, rate=0, start_ms=START, count=3, transport="http")
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(400)))
    await run_simulation(cfg, http_client=client)
    server = serve_metrics(0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        async with httpx.AsyncClient(base_url=base) as http:
            health = await http.get("/healthz")
            metrics = (await http.get("/metrics")).text
    finally:
        server.shutdown()
    assert health.status_code == 200
    assert 'millrace_simulator_send_errors_total{reason="http_400",transport="http"}' in metrics
    assert "millrace_simulator_readings_sent_total" in metrics
