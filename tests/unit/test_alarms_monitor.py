"""The aggregator's observer: events are queued on the producer, snapshots come before the
Kafka commit, and a commit never passes the newest snapshot."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiokafka import AIOKafkaProducer, TopicPartition

from services.telemetry.engine.monitor import Monitor
from services.telemetry.engine.store import SnapshotStore
from services.telemetry.rules.book import RuleBook, parse_rules

TP = TopicPartition("telemetry.readings.v1", 0)
BOOK = parse_rules(
    {"alarms": [{"id": "hot", "severity": "major", "when": {"metric": "t", "above": 90}}]}
)


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], dict[str, Any]] = {}
        self.saves = 0

    async def load(self, topic: str, partitions: list[int]) -> dict[int, dict[str, Any]]:
        return {p: self.rows[(topic, p)] for p in partitions if (topic, p) in self.rows}

    async def save(self, topic: str, snapshots: dict[int, dict[str, Any]]) -> None:
        self.saves += 1
        for p, snap in snapshots.items():
            self.rows[(topic, p)] = snap


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes, headers: Any
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def monitor(store: FakeStore, interval_ms: int = 60_000) -> Monitor:
    return Monitor(BOOK, 0, cast(SnapshotStore, store), interval_ms)


async def test_events_are_queued_and_counted_as_active() -> None:
    mon, producer = monitor(FakeStore()), FakeProducer()
    await mon.restore([TP])
    mon.engine(TP).observe("press-1", "t", 1_000, 95.0, 0)
    pending = await mon.flush(cast(AIOKafkaProducer, producer), TP, 1_000)
    assert len(pending) == 1
    assert [(t, k) for t, k, _ in producer.sent] == [("telemetry.alarms.v1", b"press-1")]
    assert mon.engine(TP).active == 1


async def test_first_commit_snapshots_then_commits_are_held_at_the_snapshot() -> None:
    store = FakeStore()
    mon = monitor(store, interval_ms=60_000)
    await mon.restore([TP])
    mon.engine(TP).observe("press-1", "t", 1_000, 95.0, 0)
    await mon.save({TP: 1})
    assert store.saves == 1
    assert mon.clamp(TP, 1) == 1
    mon.engine(TP).observe("press-1", "t", 2_000, 95.0, 1)
    await mon.save({TP: 2})
    assert store.saves == 1
    assert mon.clamp(TP, 2) == 1


async def test_restore_continues_from_the_snapshot_and_skips_covered_offsets() -> None:
    store = FakeStore()
    first = monitor(store, interval_ms=0)
    await first.restore([TP])
    first.engine(TP).observe("press-1", "t", 1_000, 95.0, 0)
    first.engine(TP).drain()
    await first.save({TP: 1})

    second, producer = monitor(store), FakeProducer()
    await second.restore([TP])
    assert second.engine(TP).active == 1
    second.engine(TP).observe("press-1", "t", 1_000, 95.0, 0)
    assert await second.flush(cast(AIOKafkaProducer, producer), TP, 1_000) == []
    second.engine(TP).observe("press-1", "t", 3_000, 20.0, 1)
    await second.flush(cast(AIOKafkaProducer, producer), TP, 3_000)
    assert [b'"cleared"' in v for _, _, v in producer.sent] == [True]


async def test_without_rules_nothing_is_watched_stored_or_held_back() -> None:
    store = FakeStore()
    mon = Monitor(RuleBook(), 0, cast(SnapshotStore, store))
    await mon.restore([TP])
    await mon.save({TP: 10})
    assert (mon.metrics, store.saves, mon.clamp(TP, 10)) == (frozenset(), 0, 10)


async def test_a_quiet_partition_times_out_silences_by_the_wall_clock() -> None:
    book = parse_rules(
        {
            "alarms": [
                {"id": "gone", "severity": "major", "when": {"metric": "t", "absent_for": "60s"}}
            ]
        }
    )
    mon, producer = Monitor(book, 0, idle_ms=2_000), FakeProducer()
    fake = cast(AIOKafkaProducer, producer)
    await mon.restore([TP])
    mon.engine(TP).observe("press-1", "t", 1_000, 20.0, 0)
    assert await mon.flush(fake, TP, 1_000, now_ms=500_000) == []
    assert await mon.flush(fake, TP, 1_000, now_ms=501_000) == []
    assert await mon.flush(fake, TP, 1_000, now_ms=559_000) == []
    assert len(await mon.flush(fake, TP, 1_000, now_ms=560_000)) == 1
    assert b'"ts":61000' in producer.sent[0][2]
