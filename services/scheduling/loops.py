"""The service's background loops, each one life of a task that a
:class:`shared.supervise.Supervisor` restarts with backoff after an error (an outage): work
resumes from durable state, nothing is skipped. ``live`` names the loops running now, for
readiness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg

from services.scheduling.adapters.consumer import TOPICS, SchedulingConsumer
from services.scheduling.adapters.oee import OeeReporter
from services.scheduling.adapters.planner import Planner, Solve
from services.scheduling.adapters.prune import prune_loop, retention
from services.scheduling.adapters.relay import OutboxRelay
from services.scheduling.domain.problem import Rules
from services.scheduling.handlers import EVENTS, Context
from services.scheduling.settings import SchedulingSettings
from shared.dlq import DlqPublisher
from shared.kafka import make_consumer, make_producer

Body = Callable[[], Awaitable[None]]


class Loops:
    def __init__(
        self,
        settings: SchedulingSettings,
        pool: asyncpg.Pool,
        stop: asyncio.Event,
        live: set[str],
        *,
        solver: Solve,
        rules: Rules,
    ) -> None:
        self.s, self.pool, self.stop, self.live = settings, pool, stop, live
        self.solver, self.rules = solver, rules

    def enabled(self) -> list[tuple[str, Body]]:
        s = self.s
        wanted = {
            "relay": s.scheduling_relay_enabled,
            "consumer": s.scheduling_consumer_enabled,
            "planner": s.scheduling_planner_enabled,
            "oee": s.scheduling_oee_enabled,
            "prune": s.scheduling_prune_interval_ms > 0,
        }
        bodies: dict[str, Body] = {
            "relay": self.relay,
            "consumer": self.consumer,
            "planner": self.planner,
            "oee": self.oee,
            "prune": self.prune,
        }
        return [(name, bodies[name]) for name, on in wanted.items() if on]

    async def relay(self) -> None:
        producer = make_producer(self.s, role="outbox-relay")
        await producer.start()
        try:
            relay = OutboxRelay(
                self.pool,
                producer,
                batch=self.s.scheduling_relay_batch,
                poll_s=self.s.scheduling_relay_poll_ms / 1000,
            )
            await relay.run(self.stop)
        finally:
            await producer.stop()

    async def consumer(self) -> None:
        consumer = make_consumer(self.s, *TOPICS, group_id=self.s.scheduling_consumer_group)
        producer = make_producer(self.s, role="dlq")
        await producer.start()
        await consumer.start()
        try:
            worker = SchedulingConsumer(
                self.pool,
                consumer,
                DlqPublisher(producer, self.s.service_name),
                Context(self.s.scheduling_replan_drift_s),
            )
            self.live.add("consumer")
            await worker.run(self.stop)
        finally:
            self.live.discard("consumer")
            with contextlib.suppress(Exception):
                await consumer.stop()
            await producer.stop()

    async def planner(self) -> None:
        planner = Planner(
            self.pool,
            self.solver,
            self.rules,
            plan_id=self.s.scheduling_plan_id,
            time_limit_s=self.s.scheduling_time_limit_s,
            workers=self.s.scheduling_workers,
            coalesce_s=self.s.scheduling_coalesce_ms / 1000,
            quick=self.s.scheduling_quick_replan,
        )
        self.live.add("planner")
        try:
            await planner.run(self.stop)
        finally:
            self.live.discard("planner")

    async def oee(self) -> None:
        reporter = OeeReporter(
            self.pool,
            self.rules,
            period_s=self.s.scheduling_oee_period_s,
            grace_s=self.s.scheduling_oee_grace_s,
        )
        await reporter.run(self.stop)

    async def prune(self) -> None:
        policy = retention(self.s.scheduling_outbox_keep_ms, EVENTS, self.s.scheduling_plans_keep)
        interval = self.s.scheduling_prune_interval_ms / 1000
        await prune_loop(self.pool, policy, self.s.scheduling_plan_id, interval, self.stop)
