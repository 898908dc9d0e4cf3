"""Helpers for telemetry tests on real Kafka: an independent window computation, a plain
aiokafka reader, and a way to run the service as a real process."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

WindowKey = tuple[str, str, int, int]
# The window sizes and lateness of start_telemetry's service.
WINDOWS_MS = (1000, 5000)
LATENESS_MS = 500


def expected_windows(
    readings: Iterable[tuple[str, str, int, float]], sizes_ms: Iterable[int]
) -> dict[WindowKey, dict[str, float]]:
    """Windows computed with the statistics module, independent of the aggregator's code."""
    groups: dict[WindowKey, list[tuple[int, float]]] = defaultdict(list)
    for device, metric, ts, value in readings:
        for size in sizes_ms:
            groups[(device, metric, size, ts - ts % size)].append((ts, value))
    out = {}
    for key, pairs in groups.items():
        values = [v for _, v in pairs]
        out[key] = {
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "mean": statistics.fmean(values),
            "stddev": statistics.pstdev(values),
            "last": max(enumerate(pairs), key=lambda ip: (ip[1][0], ip[0]))[1][1],
        }
    return out


def window_key(data: Mapping[str, Any]) -> WindowKey:
    size = data["window_end"] - data["window_start"]
    return (data["device_id"], data["metric"], size, data["window_start"])


def assert_windows_equal(got: Mapping[str, Any], want: Mapping[str, float]) -> None:
    assert got["count"] == want["count"]
    for field in ("min", "max", "mean", "stddev", "last"):
        assert math.isclose(got[field], want[field], rel_tol=1e-9, abs_tol=1e-9), (
            field,
            got,
            want,
        )


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        result: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return result
    finally:
        await consumer.stop()


class TopicReader:
    """A plain aiokafka consumer (no group) reading a topic from given offsets."""

    def __init__(self, bootstrap: str, start: Mapping[TopicPartition, int]) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._start = dict(start)
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        await self._consumer.start()
        self._consumer.assign(list(self._start))
        for tp, offset in self._start.items():
            self._consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll_until(self, done: Any, timeout_s: float) -> None:
        """Read until ``done(records)`` is true; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out with {len(self.records)} records")
            batch = await self._consumer.getmany(timeout_ms=250)
            for records in batch.values():
                self.records.extend(records)

    def decoded(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [
            ({k: v.decode() for k, v in r.headers}, orjson.loads(r.value)) for r in self.records
        ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServiceProcess:
    """``millrace run <service>`` as a real child process with its log in a file."""

    def __init__(self, service: str, env: Mapping[str, str], log: Path, port: int) -> None:
        self.service, self.log, self.port = service, log, port
        self.env = {**os.environ, **env, "MILLRACE_HTTP_PORT": str(port)}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "millrace.cli", "run", self.service],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"service exited: {self.log.read_text()[-3000:]}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"service not ready: {self.log.read_text()[-3000:]}")

    def terminate(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    async def metric(self, name: str) -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{self.url}/metrics")).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, _, value = line.rpartition(" ")
                if head.split("{")[0] == name:
                    total += float(value)
        return total


async def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit ``group``'s offsets at the topic's current end, so a service started with that
    group sees only what a test produces next, not what earlier tests left on the topic."""
    ends = await end_offsets(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.commit({tp: (offset, "wm=-1") for tp, offset in ends.items()})
    finally:
        await consumer.stop()


def read_with_confluent(
    bootstrap: str, start: Mapping[TopicPartition, int], count: int, timeout_s: float = 30.0
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """Read ``count`` records with librdkafka (confluent-kafka): an off-the-shelf client with no
    Millrace code, as a subscribing plant system would."""
    import confluent_kafka  # noqa: PLC0415 - only this helper needs librdkafka

    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "off-the-shelf", "enable.auto.commit": False}
    )
    consumer.assign(
        [confluent_kafka.TopicPartition(tp.topic, tp.partition, off) for tp, off in start.items()]
    )
    out: list[tuple[dict[str, str], dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() or msg.value() is None:
                continue
            raw: Any = msg.headers() or []
            headers = {str(k): bytes(v or b"").decode() for k, v in raw}
            out.append((headers, orjson.loads(msg.value() or b"null")))
    finally:
        consumer.close()
    return out


def consumer_group(group: str, role: str) -> str:
    """The group the telemetry aggregator of ``role`` consumes as, derived as the service does
    (the alarms role has a group of its own)."""
    from services.telemetry.settings import TelemetrySettings  # noqa: PLC0415

    settings = TelemetrySettings(kafka_bootstrap="127.0.0.1:9", telemetry_consumer_group=group)
    # Set after validation: the alarms role would also want its rules and a database.
    return settings.model_copy(update={"telemetry_role": role}).telemetry_group


async def start_telemetry(
    bootstrap: str, log: Path, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """``millrace run telemetry`` as a real process on fresh topics' ends: every manifest topic
    exists, its consumer group starts at the end of the readings, windows are short and commits
    frequent so tests run in seconds; ``env`` adds or overrides settings. Ready on return."""
    from contracts.manifest import TOPICS  # noqa: PLC0415 - keep this module light to import
    from shared.kafka import ensure_topics  # noqa: PLC0415
    from shared.settings import ServiceSettings  # noqa: PLC0415

    await ensure_topics(ServiceSettings(kafka_bootstrap=bootstrap), TOPICS)
    group = f"it-{uuid.uuid4().hex[:8]}"
    role = (env or {}).get("MILLRACE_TELEMETRY_ROLE", "all")
    await start_group_at_end(bootstrap, consumer_group(group, role), "telemetry.readings.v1")
    service = ServiceProcess(
        "telemetry",
        {
            "MILLRACE_KAFKA_BOOTSTRAP": bootstrap,
            "MILLRACE_TELEMETRY_WINDOWS": ",".join(f"{ms}ms" for ms in WINDOWS_MS),
            "MILLRACE_TELEMETRY_ALLOWED_LATENESS_MS": str(LATENESS_MS),
            "MILLRACE_TELEMETRY_IDLE_CLOSE_MS": "500",
            "MILLRACE_TELEMETRY_COMMIT_INTERVAL_MS": "100",
            "MILLRACE_TELEMETRY_CONSUMER_GROUP": group,
            **(env or {}),
        },
        log,
        free_port(),
    )
    service.start()
    try:
        await service.wait_ready()
    except BaseException:
        service.kill()
        raise
    return service
