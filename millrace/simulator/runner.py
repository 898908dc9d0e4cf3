"""Runs a simulation: builds each tick, paces it against a monotonic clock, hands it to senders.

Pacing is drift-free: tick ``j`` is due at ``t0 + (j + 1) * tick`` on the monotonic clock, so a
slow tick is caught up by the next one instead of pushing the whole schedule back. A tick is
delivered (acknowledged) before the next one is built, which bounds memory and keeps the run
at-least-once; stopping finishes the current tick and flushes what is buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import httpx

from millrace.simulator.config import SimulatorConfig
from millrace.simulator.generator import BatchBuilder, Message
from millrace.simulator.report import SimulationReport, Tally
from millrace.simulator.senders import HttpSender, KafkaSender, Sender
from shared.kafka import make_producer
from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)

Clock = Callable[[], float]


def route(messages: Sequence[Message], transport: str) -> dict[str, list[Message]]:
    """Split a tick by transport; with ``both``, even devices go to Kafka and odd ones to HTTP."""
    if transport != "both":
        return {transport: list(messages)}
    out: dict[str, list[Message]] = {"kafka": [], "http": []}
    for message in messages:
        out["kafka" if message.device_index % 2 == 0 else "http"].append(message)
    return out


async def open_senders(
    cfg: SimulatorConfig,
    tally: Tally,
    kafka_settings: ServiceSettings | None,
    http_client: httpx.AsyncClient | None = None,
) -> dict[str, Sender]:
    """Start the transports the config asks for."""
    senders: dict[str, Sender] = {}
    if cfg.uses("kafka"):
        producer = make_producer(kafka_settings or ServiceSettings(), role="simulator")
        await producer.start()
        senders["kafka"] = KafkaSender(producer, cfg.topic, tally, max_attempts=cfg.max_attempts)
    if cfg.uses("http"):
        client = http_client or httpx.AsyncClient(
            timeout=10.0, limits=httpx.Limits(max_connections=cfg.http_concurrency)
        )
        senders["http"] = HttpSender(
            client,
            cfg.http_url,
            tally,
            token=cfg.token,
            concurrency=cfg.http_concurrency,
            max_attempts=cfg.max_attempts,
        )
    return senders


async def deliver(senders: dict[str, Sender], messages: list[Message], transport: str) -> None:
    if messages:
        parts = route(messages, transport)
        await asyncio.gather(*(senders[t].send(ms) for t, ms in parts.items() if ms))


async def _wait_until(deadline: float, stop: asyncio.Event, clock: Clock) -> None:
    delay = deadline - clock()
    if delay > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def run_simulation(
    cfg: SimulatorConfig,
    *,
    kafka_settings: ServiceSettings | None = None,
    stop: asyncio.Event | None = None,
    http_client: httpx.AsyncClient | None = None,
    clock: Clock = time.monotonic,
    wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
) -> SimulationReport:
    """Run until the count or duration is reached or ``stop`` is set; report what was delivered.

    ``http_client`` lets tests plug in an ``httpx.MockTransport``; ``clock`` and ``wall_ms`` let
    them drive pacing without sleeping.
    """
    stop = stop or asyncio.Event()
    tally = Tally(record=cfg.record)
    builder = BatchBuilder(cfg)
    senders = await open_senders(cfg, tally, kafka_settings, http_client)
    log.info(
        "simulation started",
        devices=cfg.devices,
        metrics=cfg.metrics,
        rate=cfg.rate,
        transport=cfg.transport,
        fixed_timeline=cfg.start_ms is not None,
    )
    started = clock()
    generated, tick = 0, 0
    try:
        while not stop.is_set():
            if cfg.paced:
                await _wait_until(started + builder.schedule.tick_end_s(tick), stop, clock)
            now = None if cfg.start_ms is not None else wall_ms()
            messages = builder.tick(tick, now)
            generated += sum(m.size for m in messages)
            await deliver(senders, messages, cfg.transport)
            if builder.schedule.is_last_tick(tick):
                break
            tick += 1
            if not cfg.paced:
                await asyncio.sleep(0)
        rest = builder.flush()
        generated += sum(m.size for m in rest)
        await deliver(senders, rest, cfg.transport)
    finally:
        for sender in senders.values():
            await sender.close()
    report = SimulationReport(
        readings_generated=generated,
        readings_sent=dict(tally.readings),
        messages_sent=dict(tally.messages),
        errors=dict(tally.errors),
        elapsed_s=clock() - started,
        batches=tally.batches,
    )
    log.info(
        "simulation finished",
        sent=report.total_sent,
        generated=generated,
        errors=sum(report.errors.values()),
        elapsed_s=round(report.elapsed_s, 3),
    )
    return report
