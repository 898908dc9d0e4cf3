"""The simulator on a real Kafka broker: a fixed timeline sent, then read back with aiokafka."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI, Request, Response

from contracts.envelope import parse_headers
from contracts.manifest import topic
from contracts.telemetry import ReadingsBatch
from millrace.simulator import SimulatorConfig, generate, run_simulation
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration

START = 1_732_262_400_000


async def fresh_topic(settings: ServiceSettings) -> str:
    name = f"simtest-{uuid.uuid4().hex[:10]}.readings.v1"
    spec = replace(topic("telemetry.readings.v1"), name=name, partitions=3)
    await ensure_topics(settings, [spec])
    return name


async def read_back(bootstrap: str, name: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(60):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
        extra = await consumer.getmany(timeout_ms=500)
        records.extend(r for part in extra.values() for r in part)
    finally:
        await consumer.stop()
    return records


def by_device(pairs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for device, batch in pairs:
        out[device].append(batch)
    return dict(out)


async def test_fixed_timeline_is_read_back_exactly(kafka_bootstrap: str) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    name = await fresh_topic(settings)
    cfg = SimulatorConfig(
        devices=6, metrics=4, rate=0, start_ms=START, count=2400, topic=name, record=True
    )
    expected = list(generate(cfg))

    report = await run_simulation(cfg, kafka_settings=settings)

    assert report.readings_sent == {"kafka": 2400}
    assert not report.errors
    assert by_device([(b.device_id, b.batch) for b in report.batches]) == by_device(expected)
    records = await read_back(kafka_bootstrap, name, len(expected))
    assert len(records) == len(expected)
    got: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        event = parse_headers(record.headers)
        key = record.key.decode()
        assert event.type == "io.millrace.telemetry.readings.v1"
        assert event.source == "/millrace/simulator"
        assert event.subject == key
        assert event.dataschema == "urn:millrace:schema:telemetry.readings.v1"
        assert dict(record.headers)["content-type"] == b"application/json"
        assert ReadingsBatch.model_validate_json(record.value).device_id == key
        got.append((key, orjson.loads(record.value)))
    assert len({parse_headers(r.headers).id for r in records}) == len(records)
    # Per-key order survives: each device's batches arrive in the order they were generated.
    assert by_device(got) == by_device(expected)


class Ingest:
    """A stand-in for the telemetry HTTP ingest: accepts batches, remembers them."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, dict[str, Any]]] = []
        self.app = FastAPI()
        self.app.post("/v1/readings")(self.post)

    async def post(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer t0ken":
            return Response(status_code=401)
        batch = orjson.loads(await request.body())
        self.batches.append((batch["device_id"], batch))
        return Response(status_code=202)


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[Ingest, str]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = Ingest()
    server = uvicorn.Server(uvicorn.Config(app.app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield app, f"http://127.0.0.1:{sock.getsockname()[1]}/v1/readings"
    server.should_exit = True
    await task


async def test_both_transports_split_the_fleet_by_device(
    kafka_bootstrap: str, ingest: tuple[Ingest, str]
) -> None:
    app, url = ingest
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    name = await fresh_topic(settings)
    cfg = SimulatorConfig(
        devices=5,
        metrics=3,
        rate=0,
        start_ms=START,
        count=900,
        batch=20,
        transport="both",
        topic=name,
        http_url=url,
        token="t0ken",
    )
    expected = by_device(list(generate(cfg)))

    report = await run_simulation(cfg, kafka_settings=settings)

    assert report.readings_sent == {"kafka": 540, "http": 360}
    kafka_messages = sum(len(b) for d, b in expected.items() if d.endswith(("1", "3", "5")))
    records = await read_back(kafka_bootstrap, name, kafka_messages)
    over_kafka = [(r.key.decode(), orjson.loads(r.value)) for r in records]
    assert set(by_device(over_kafka)) == {"press-0001", "lathe-0003", "press-0005"}
    assert set(by_device(app.batches)) == {"mill-0002", "grinder-0004"}
    assert by_device(over_kafka) | by_device(app.batches) == expected


def test_cli_sends_a_fixed_timeline(kafka_bootstrap: str) -> None:
    settings = ServiceSettings(kafka_bootstrap=kafka_bootstrap)
    name = asyncio.run(fresh_topic(settings))
    argv = f"simulate --devices 3 --count 300 --rate 0 --start-ms {START} --topic {name}"
    done = subprocess.run(
        [sys.executable, "-m", "millrace.cli", *argv.split()],
        env={"MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "300/300 readings sent" in done.stderr
    assert len(asyncio.run(read_back(kafka_bootstrap, name, 100))) == 100
