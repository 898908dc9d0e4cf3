"""The benchmark's broker and Kafka helpers: a throwaway local Kafka unless one is given."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # stubs omit the re-export
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from contracts.manifest import TOPICS
from millrace.infra.kafka import KafkaConfig, LocalKafka
from shared.kafka import ensure_topics
from shared.settings import ServiceSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """``MILLRACE_KAFKA_BOOTSTRAP`` if set, else a local broker in a temp dir on free ports."""
    given = os.environ.get("MILLRACE_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="millrace-bench-") as tmp:
        kafka = LocalKafka(KafkaConfig(Path(tmp) / "kafka", free_port(), free_port(), True))
        bootstrap = kafka.start()
        try:
            yield bootstrap
        finally:
            kafka.stop()


def recreate_topic(
    bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None
) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        for fut in admin.delete_topics([topic]).values():
            fut.result()
        _wait(lambda: topic not in admin.list_topics(timeout=10).topics)
    for fut in admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})]).values():
        fut.result()
    _wait(lambda: topic in admin.list_topics(timeout=10).topics)


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            fut.result()


def _wait(done: Callable[[], bool]) -> None:
    for _ in range(200):
        if done():
            return
        time.sleep(0.05)
    raise TimeoutError("topic change not visible")


def producer(bootstrap: str) -> Producer:
    """Fast, ordered, acks=all: the pre-fill and the paced producer."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": "none",
            "enable.idempotence": True,
        }
    )


def paced_producer(bootstrap: str) -> AIOKafkaProducer:
    """The latency runs' load generator (not yet started): waits for the leader only, no
    idempotence, no compression, no linger (``latency.paced`` hands each tick's readings over
    as whole record batches). With the idempotent acks=all producer above, the readings alone
    (no aggregator running) reached this broker with a p99 of about 1 s at 65 k/s, which would
    have hidden everything the benchmark is meant to see."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        enable_idempotence=False,
        linger_ms=0,
        max_batch_size=1 << 20,
    )


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-probe"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        c.close()


class CommitWatcher:
    """Reads a group's committed offsets (one client, reused while polling)."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self._c = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )

    def committed(self, topic: str, partitions: int) -> dict[int, int]:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        try:
            found = self._c.committed(tps, timeout=10)
        except KafkaException:
            return {}  # the group's coordinator is still being found: ask again
        return {tp.partition: tp.offset for tp in found}

    def close(self) -> None:
        self._c.close()


def ensure_manifest_topics(bootstrap: str) -> None:
    """Every topic of the contract manifest, as ``millrace topics`` creates them."""
    asyncio.run(ensure_topics(ServiceSettings(kafka_bootstrap=bootstrap), TOPICS))


def stamp_on_append(bootstrap: str, *topics: str) -> None:
    """Record timestamps = when the broker appended them: "on Kafka", not "handed to the client"."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(
                    "message.timestamp.type",
                    "LogAppendTime",
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for topic in topics
    ]
    for fut in admin.incremental_alter_configs(resources).values():
        fut.result()
