"""Rebalance and restore: a revoked partition's state is dropped (the next owner replays from
its commit), and a newly assigned one is rebuilt from its commit: the offset, the clock in the
metadata (``metadata.py``) and, with a clock per device, the device clocks read again from the
records the checkpoint points at (docs/decisions/0002-window-recovery.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import OffsetAndMetadata

from contracts.telemetry import Quality
from services.telemetry.aggregator.commit import Committer
from services.telemetry.aggregator.metadata import decode_idle, decode_metadata
from services.telemetry.aggregator.partition import Partition
from services.telemetry.decode_fast import decode_readings_fast
from services.telemetry.engine.monitor import Monitor
from services.telemetry.kafka.internals import fetch_committed
from services.telemetry.settings import TelemetrySettings
from services.telemetry.windows.clocks import Checkpoint, ClockScan
from services.telemetry.windows.devices import DeviceWindows
from services.telemetry.windows.partition import PartitionWindows
from shared.logging import get_logger

# Empty polls in a row after which reading a partition again for its device clocks stops short
# of the commit point (its records were deleted, or it ends in transaction markers).
SCAN_EMPTY_POLLS = 10
log = get_logger(__name__)

# How the restore reads the group's committed offsets with their metadata: by default
# ``internals.fetch_committed``; tests pass a function that returns the commits they script.
FetchCommitted = Callable[
    [AIOKafkaConsumer, Iterable[TopicPartition]],
    Awaitable[dict[TopicPartition, OffsetAndMetadata]],
]


class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Drops the state of revoked partitions; assigned ones are restored by the next poll."""

    def __init__(
        self,
        partitions: dict[TopicPartition, Partition],
        monitor: Monitor,
        committer: Committer,
    ) -> None:
        self._partitions, self._monitor, self._committer = partitions, monitor, committer

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        # Pending sends and commits happen inside the poll loop, never across a poll (a commit
        # in flight is waited for here), so the state can simply be dropped: the next owner
        # replays from the committed offset.
        await self._committer.wait_in_flight()
        for tp in revoked:
            self._partitions.pop(tp, None)
        self._monitor.drop(revoked)
        if revoked:
            log.info("partitions revoked", partitions=[tp.partition for tp in revoked])

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if assigned:
            log.info("partitions assigned", partitions=[tp.partition for tp in assigned])


class Restorer:
    """Rebuilds newly assigned partitions into ``partitions`` (the loop's own dict), from the
    commits ``fetch_committed`` reads."""

    def __init__(
        self,
        settings: TelemetrySettings,
        consumer: AIOKafkaConsumer,
        monitor: Monitor,
        partitions: dict[TopicPartition, Partition],
        *,
        sizes: tuple[int, ...],
        clock: Callable[[], int],
        fetch_committed: FetchCommitted = fetch_committed,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.monitor = monitor
        self.partitions = partitions
        self.sizes = sizes
        self.lateness = settings.telemetry_allowed_lateness_ms
        self.per_device = bool(sizes) and settings.telemetry_event_time == "device"
        self.idle_ms = settings.telemetry_device_idle_close_ms
        self.clock = clock
        self.fetch_committed = fetch_committed

    async def restore(self, tps: Iterable[TopicPartition]) -> set[TopicPartition]:
        """The state of newly assigned partitions from their commits; returns those whose
        records of this poll are dropped (their device clocks were read again first, and the
        consumer is back at the committed offset)."""
        missing = list(tps)
        if not missing:
            return set()
        # aiokafka's public committed() drops the metadata, which holds the watermark.
        committed = await self.fetch_committed(self.consumer, missing)
        await self.monitor.restore(missing)
        # A rebalance during those awaits may have revoked some of them: the revoke found no
        # state to drop, so none is made here either (the next owner replays them).
        assigned = self.consumer.assignment()
        revoked = [tp for tp in missing if tp not in assigned]
        if revoked:
            self.monitor.drop(revoked)
            log.info(
                "partitions revoked before restore", partitions=[tp.partition for tp in revoked]
            )
        rescanned: set[TopicPartition] = set()
        for tp in (tp for tp in missing if tp in assigned):
            meta = committed.get(tp)
            metadata = meta.metadata if meta is not None else None
            pinned = decode_idle(metadata)
            windows: PartitionWindows | DeviceWindows
            replay_at = -1
            checkpoint = Checkpoint.decode(metadata) if self.per_device else None
            if not self.per_device:
                windows = PartitionWindows(self.sizes, self.lateness)
                windows.advance_to(decode_metadata(metadata))
            elif checkpoint is None:
                # Nothing committed, or a partition-wide watermark of an earlier version.
                windows = self._device_windows()
                windows.base = decode_metadata(metadata)
                windows.advance_to(windows.base)
            else:
                windows = self._device_windows()
                scan = ClockScan(self.sizes, self.lateness, checkpoint, self.idle_ms)
                if meta is not None and checkpoint.scan < checkpoint.at:
                    await self._scan_clocks(tp, scan, meta.offset)
                    rescanned.add(tp)
                windows.restore(checkpoint, scan.finish(), scan.tops)
                replay_at = checkpoint.at
            engine = self.monitor.engine(tp)
            self.partitions[tp] = Partition(windows, engine, self.clock(), pinned, replay_at)
            log.info(
                "partition restored",
                partition=tp.partition,
                watermark=windows.watermark,
                idle=pinned,
                clocks_from=checkpoint.scan if checkpoint else None,
            )
        return rescanned

    def _device_windows(self) -> DeviceWindows:
        horizon = self.settings.telemetry_backfill_horizon_ms
        return DeviceWindows(self.sizes, self.lateness, horizon, self.idle_ms)

    async def _scan_clocks(self, tp: TopicPartition, scan: ClockScan, committed: int) -> None:
        """Read ``[scan, at)`` of ``tp`` once into ``scan``, for the device clocks of its
        checkpoint (see ``windows/device_clocks.py``), then go back to the committed offset for the
        replay."""
        checkpoint = scan.checkpoint
        skew, bad = self.settings.telemetry_max_future_skew_ms, Quality.BAD
        self.consumer.seek(tp, checkpoint.scan)
        empty = 0
        while await self.consumer.position(tp) < checkpoint.at and empty < SCAN_EMPTY_POLLS:
            got = await self.consumer.getmany(
                tp, timeout_ms=500, max_records=self.settings.telemetry_max_poll_records
            )
            records = got.get(tp, [])
            empty = 0 if records else empty + 1
            now = self.clock()
            for record in records:
                if record.offset >= checkpoint.at:
                    break
                try:
                    batch = decode_readings_fast(record.value, record.key, now, skew)
                except MemoryError:
                    raise
                except Exception:  # noqa: BLE001, S112 (left out of the windows as well)
                    continue
                scan.add(batch.device_id, batch.readings, record.offset, bad, record.timestamp)
        self.consumer.seek(tp, committed)
        log.info("device clocks read again", partition=tp.partition, devices=len(scan.tops))
