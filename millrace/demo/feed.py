"""Feeds the demo's state from Kafka: readings, aggregates, the readings DLQ, alarms,
machine states, the plan with its execution (scheduled, started, completed operations) and
each machine's OEE.

A plain aiokafka consumer with no group: it commits nothing and takes nothing from the
service's consumer group, so watching never changes what the service does. It starts at the
end of each topic, so the view counts this run only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from contracts.manifest import topic
from millrace.demo.state import DemoState, Window

READINGS = "telemetry.readings.v1"
AGGREGATES = "telemetry.aggregates.v1"
ALARMS = "telemetry.alarms.v1"
STATES = "telemetry.machine-states.v1"
SCHEDULED = "scheduling.operation-scheduled.v1"
STARTED = "production.operation-started.v1"
COMPLETED = "production.operation-completed.v1"
OEE = "scheduling.oee-reported.v1"
READINGS_DLQ = topic(READINGS).dlq
Clock = Callable[[], float]


def apply(state: DemoState, record: ConsumerRecord[bytes, bytes], now: float) -> None:
    """Count one consumed record into ``state``; records it cannot read are counted apart."""
    if record.topic == READINGS_DLQ:
        state.record_dlq()
        return
    try:
        data = orjson.loads(record.value or b"")
        if record.topic == AGGREGATES:
            state.record_window(Window.from_record(data))
        elif record.topic == ALARMS:
            state.record_alarm(data)
        elif record.topic == STATES:
            state.record_machine_state(data)
        elif record.topic == SCHEDULED:
            state.board.record_scheduled(data)
        elif record.topic == STARTED:
            state.board.record_started(data)
        elif record.topic == COMPLETED:
            state.board.record_completed(data)
        elif record.topic == OEE:
            state.record_oee(data)
        else:
            state.record_batch(str(data["device_id"]), len(data["readings"]), now)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        state.undecodable += 1


class Feed:
    """Start it before anything produces, so no record of this run is missed."""

    def __init__(self, bootstrap: str, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="millrace-demo-view",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )

    async def start(self, timeout_s: float = 30.0) -> None:
        """Connect and pin every partition's position at its current end."""
        consumer = self._consumer
        consumer.subscribe(
            [READINGS, AGGREGATES, READINGS_DLQ, ALARMS, STATES, SCHEDULED, STARTED, COMPLETED, OEE]
        )
        async with asyncio.timeout(timeout_s):
            await consumer.start()
            for _ in range(int(timeout_s * 10)):
                if consumer.assignment():
                    break
                await asyncio.sleep(0.1)
            for tp in consumer.assignment():
                await consumer.position(tp)

    async def run(self, state: DemoState, stop: asyncio.Event) -> None:
        """Consume into ``state`` until ``stop`` is set."""
        while not stop.is_set():
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5_000)
            now = self._clock()
            for records in batches.values():
                for record in records:
                    apply(state, record, now)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()
