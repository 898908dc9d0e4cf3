"""The plant's machines as a telemetry fleet: device ids and metrics from the plant file.

Every ``sample_interval_ms`` each machine sends one batch with a reading of each of its
metrics, at the levels of a working or a waiting machine (:mod:`.plant_signals`), as the
shop floor says it is; a broken machine sends nothing, which is how the telemetry service's
state rules see it go DOWN. With no shop floor attached every machine waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import httpx

from millrace.masterdata.plant import Plant
from millrace.simulator.config import SimulatorConfig
from millrace.simulator.floor import Floor
from millrace.simulator.generator import Message
from millrace.simulator.plant_signals import PlantMachine
from millrace.simulator.report import SimulationReport, Tally
from millrace.simulator.runner import deliver, open_senders
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)


class PlantFleet:
    def __init__(self, plant: Plant, seed: int, floor: Floor | None = None) -> None:
        self.machines = [
            PlantMachine(seed, m.machine_id, tuple(m.metrics)) for m in plant.machines if m.metrics
        ]
        self.floor = floor
        self._last_ms: int | None = None

    def tick(self, now_ms: int) -> list[Message]:
        """One batch per machine that is not broken, stamped ``now_ms``."""
        dt_s = 0.0 if self._last_ms is None else (now_ms - self._last_ms) / 1000
        self._last_ms = now_ms
        out: list[Message] = []
        for index, machine in enumerate(self.machines):
            floor = self.floor
            if floor is not None and machine.id in floor.jobs and floor.broken(machine.id):
                continue
            working = floor is not None and machine.id in floor.jobs and floor.working(machine.id)
            readings = [
                {"metric": metric, "ts": now_ms, "value": value}
                for metric, value in machine.read(working, dt_s)
            ]
            out.append(Message(index, machine.id, {"device_id": machine.id, "readings": readings}))
        return out


async def run_plant_telemetry(
    cfg: SimulatorConfig,
    fleet: PlantFleet,
    *,
    kafka_settings: ServiceSettings | None = None,
    stop: asyncio.Event | None = None,
    http_client: httpx.AsyncClient | None = None,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> SimulationReport:
    """Send the fleet's batches every ``cfg.sample_interval_ms`` until ``stop`` or the duration."""
    stop = stop or asyncio.Event()
    tally = Tally(record=cfg.record)
    senders = await open_senders(cfg, tally, kafka_settings, http_client)
    started = time.monotonic()
    period_s = cfg.sample_interval_ms / 1000
    generated, tick = 0, 0
    log.info("plant telemetry started", machines=[m.id for m in fleet.machines])
    try:
        while not stop.is_set():
            messages = fleet.tick(wall_ms())
            generated += sum(m.size for m in messages)
            await deliver(senders, messages, cfg.transport)
            tick += 1
            if cfg.duration_s is not None and tick * period_s >= cfg.duration_s:
                break
            delay = started + tick * period_s - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
    finally:
        for sender in senders.values():
            await sender.close()
    return SimulationReport(
        readings_generated=generated,
        readings_sent=dict(tally.readings),
        messages_sent=dict(tally.messages),
        errors=dict(tally.errors),
        elapsed_s=time.monotonic() - started,
        batches=tally.batches,
    )
