"""A background loop run until stop, restarted with capped exponential backoff after an error,
and a health verdict for readiness: a loop that keeps failing is reported, not hidden.

Work resumes from durable state (committed offsets, the outbox), so a restart skips nothing;
what the restarts must not do is leave a replica that does no work looking ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from shared.logging import get_logger

log = get_logger(__name__)


class Supervisor:
    """Runs one loop. It is unhealthy after ``unhealthy_after`` failures in a row, each within
    ``healthy_after_s`` of its start; a life that lasts ``healthy_after_s`` counts as a
    healthy period, so health returns once a restarted loop has run that long."""

    def __init__(
        self,
        name: str,
        *,
        failures: Counter | None = None,
        unhealthy_after: int = 3,
        healthy_after_s: float = 30.0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failures = failures
        self.unhealthy_after = unhealthy_after
        self.healthy_after_s = healthy_after_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.failed_in_a_row = 0
        self.started_at: float | None = None  # start of the current life, None between lives

    @property
    def healthy(self) -> bool:
        if self.failed_in_a_row < self.unhealthy_after:
            return True
        return self.started_at is not None and self._lived() >= self.healthy_after_s

    async def ready(self) -> bool:
        """A readiness check (``shared.http.health_router``)."""
        return self.healthy

    def _lived(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    async def run(self, stop: asyncio.Event, body: Callable[[], Awaitable[None]]) -> None:
        """Run ``body`` until ``stop`` is set; after an error, wait and run it again."""
        backoff = self.backoff_s
        while not stop.is_set():
            self.started_at = self.clock()
            try:
                await body()
            except Exception as exc:
                if self._lived() >= self.healthy_after_s:
                    self.failed_in_a_row, backoff = 0, self.backoff_s
                self.failed_in_a_row += 1
                if self.failures is not None:
                    self.failures.inc()
                log.exception(
                    f"{self.name} failed; restarting",
                    error=repr(exc),
                    backoff_s=backoff,
                    failed_in_a_row=self.failed_in_a_row,
                )
            else:
                self.failed_in_a_row, backoff = 0, self.backoff_s
            self.started_at = None
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
