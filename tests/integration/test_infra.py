"""The local infrastructure: a real broker round trip, and the start/stop/status lifecycle."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from millrace.infra import InfraError
from millrace.infra.kafka import KafkaConfig, LocalKafka, admin_ready
from millrace.infra.postgres import LocalPostgres, PostgresConfig
from millrace.infra.process import free_port, pid_alive, wait_gone

NewTopicFactory = Callable[..., Awaitable[str]]


async def test_broker_answers_admin_requests(kafka_bootstrap: str) -> None:
    assert await admin_ready(kafka_bootstrap)


async def test_round_trip_keeps_key_value_and_headers(
    kafka_bootstrap: str, new_topic: NewTopicFactory
) -> None:
    topic = await new_topic(partitions=3)
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_type", b"io.millrace.telemetry.readings.v1"),
        ("content-type", b"application/json"),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            topic, b'{"device_id": "press-07"}', key=b"press-07", headers=headers
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}.reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()

    assert (record.partition, record.offset) == (sent.partition, sent.offset)
    assert record.key == b"press-07"
    assert record.value == b'{"device_id": "press-07"}'
    assert list(record.headers) == headers


def test_kafka_lifecycle_is_idempotent_and_leaves_nothing(scratch_state: Path) -> None:
    kafka = LocalKafka(KafkaConfig(scratch_state / "kafka", free_port(), free_port()))
    assert not kafka.status().running

    bootstrap = kafka.start()
    first = kafka.status()
    assert first.running
    assert first.endpoint == bootstrap
    assert kafka.start() == bootstrap
    assert kafka.status().pid == first.pid

    assert kafka.stop()
    assert first.pid is not None
    assert not pid_alive(first.pid)
    assert not kafka.status().running
    assert not kafka.stop()


def test_start_refuses_ports_another_process_holds(scratch_state: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kafka = LocalKafka(KafkaConfig(scratch_state / "kafka", port, free_port()))
        with pytest.raises(InfraError, match=f"port broker {port} .* used by another process"):
            kafka.start(timeout_s=60)
        postgres = LocalPostgres(PostgresConfig(scratch_state / "postgres", port))
        with pytest.raises(InfraError, match="used by another process"):
            postgres.start()
    assert not kafka.status().running
    assert not postgres.status().running


async def test_postgres_lifecycle_is_idempotent_and_leaves_nothing(scratch_state: Path) -> None:
    postgres = LocalPostgres(PostgresConfig(scratch_state / "postgres", free_port()))
    assert not postgres.status().running

    url = postgres.start()
    first = postgres.status()
    assert first.running
    assert first.endpoint == url
    assert postgres.start() == url
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "millrace"
    finally:
        await conn.close()

    assert postgres.stop()
    assert first.pid is not None
    assert not pid_alive(first.pid)
    assert not postgres.status().running


def test_tied_server_dies_with_a_killed_starter(scratch_state: Path) -> None:
    """A test run killed with SIGKILL must not leave PostgreSQL running."""
    home = scratch_state / "postgres"
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from millrace.infra.postgres import LocalPostgres, PostgresConfig\n"
            "cfg = PostgresConfig(Path(sys.argv[1]), int(sys.argv[2]), tied_to_caller=True)\n"
            "print(LocalPostgres(cfg).start(), flush=True)\n"
            "time.sleep(600)\n",
            str(home),
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        assert starter.stdout.readline().startswith("postgresql://")
        postgres = LocalPostgres(PostgresConfig(home))
        pid = postgres.status().pid
        assert pid is not None
        starter.kill()
        starter.wait()
        assert wait_gone(pid, 30.0)
    finally:
        starter.kill()
        starter.wait()
