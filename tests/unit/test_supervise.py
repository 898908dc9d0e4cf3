"""``shared.supervise.Supervisor``: restarts with backoff, and a loop that keeps failing is
reported unhealthy until a restarted life runs healthy for long enough."""

from __future__ import annotations

import asyncio
import itertools

from prometheus_client import CollectorRegistry, Counter
from support.metrics import sample

from shared.supervise import Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_quick_failures_in_a_row_make_it_unhealthy_and_a_healthy_life_recovers() -> None:
    clock = Clock()
    registry = CollectorRegistry()
    failures = Counter("t_failures_total", "", registry=registry)
    sup = Supervisor(
        "consumer", failures=failures, unhealthy_after=3, healthy_after_s=30, backoff_s=0.001
    )
    sup.clock = clock
    stop = asyncio.Event()
    plan = ["fail", "fail", "fail", "run", "run"]
    running = asyncio.Event()
    release = asyncio.Event()

    async def body() -> None:
        if plan.pop(0) == "fail":
            clock.now += 1  # fails a second after its start: no healthy period
            raise ConnectionError("broker down")
        running.set()
        await release.wait()
        release.clear()
        if plan:
            raise ConnectionError("broker down again")

    task = asyncio.create_task(sup.run(stop, body))
    await running.wait()
    assert plan == ["run"]
    assert sample("t_failures_total", registry) == 3
    assert sup.failed_in_a_row == 3
    assert not sup.healthy
    assert not await sup.ready()
    clock.now += 29.9
    assert not sup.healthy
    clock.now += 0.2  # the fourth life has run for 30 s: a healthy period, ready again
    assert sup.healthy
    # its failure after that healthy period starts a new count, from one
    running.clear()
    release.set()
    await running.wait()
    assert plan == []
    assert sup.failed_in_a_row == 1
    assert sup.healthy
    stop.set()
    release.set()
    await task


async def test_fewer_failures_than_the_threshold_stay_healthy_and_a_clean_return_resets() -> None:
    sup = Supervisor("relay", unhealthy_after=3, healthy_after_s=30, backoff_s=0.001)
    stop = asyncio.Event()
    seen: list[tuple[int, bool]] = []

    async def body() -> None:
        seen.append((sup.failed_in_a_row, sup.healthy))
        if len(seen) <= 2:
            raise OSError("database down")
        if len(seen) == 4:
            stop.set()

    await asyncio.wait_for(sup.run(stop, body), 5)
    # two failures, then a life that returns (resets the count), then one that stops
    assert seen == [(0, True), (1, True), (2, True), (0, True)]
    assert sup.failed_in_a_row == 0


async def test_backoff_doubles_up_to_the_cap_and_stop_ends_the_wait() -> None:
    sup = Supervisor("prune", backoff_s=0.01, max_backoff_s=0.04)
    stop = asyncio.Event()
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def body() -> None:
        starts.append(loop.time())
        if len(starts) == 6:
            stop.set()
            return
        raise RuntimeError("bug")

    await asyncio.wait_for(sup.run(stop, body), 5)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= w * 0.9 for g, w in zip(gaps, [0.01, 0.02, 0.04, 0.04, 0.04], strict=True))
    assert max(gaps) < 1.0

    # a long backoff does not hold up the stop
    sup = Supervisor("prune", backoff_s=60)
    stop = asyncio.Event()

    async def fails() -> None:
        loop.call_later(0.05, stop.set)
        raise RuntimeError("bug")

    await asyncio.wait_for(sup.run(stop, fails), 5)
