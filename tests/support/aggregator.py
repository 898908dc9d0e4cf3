"""Stand-ins for the Kafka side of ``Aggregator`` in tests that run it without a broker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata


class Committed:
    """The group's committed (offset, metadata) by partition, read back as
    ``Aggregator(fetch_committed=...)`` reads them; a partition without a commit is left out,
    as the group coordinator leaves it out. ``offsets`` may be changed between restores."""

    def __init__(self, offsets: Mapping[TopicPartition, tuple[int, str]] | None = None) -> None:
        self.offsets = dict(offsets or {})

    async def __call__(
        self, consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        return {tp: OffsetAndMetadata(*self.offsets[tp]) for tp in partitions if tp in self.offsets}


async def nothing_committed(
    consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    """A group that has committed nothing yet (every partition starts empty)."""
    return {}
