"""Child processes of the demo (the telemetry service, the simulator).

Each runs in its own session, so a Ctrl-C in the terminal reaches only the demo, which then
stops them in order: the simulator first (nothing new is sent), the service last (it drains,
emits and commits). Output goes to a log file under the state dir, never to the live view.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from millrace.infra.process import log_tail, spawn_detached


class ChildError(RuntimeError):
    """A child failed to start or died; the message carries the tail of its log."""


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Own session: Ctrl-C reaches only the demo, which stops children in order. The death
        # signal: a demo killed with SIGKILL still takes its children with it.
        self.proc = spawn_detached(
            self.argv, self.log, cwd=Path.cwd(), env=self.env, death_signal=signal.SIGTERM
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self, what: str) -> ChildError:
        code = self.proc.returncode if self.proc else None
        return ChildError(
            f"{self.name} {what} (exit code {code}); log: {self.log}\n"
            f"--- last lines ---\n{log_tail(self.log, 20)}"
        )

    async def stop(self, timeout_s: float) -> int | None:
        """SIGTERM its process group, wait up to ``timeout_s``, then SIGKILL; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, timeout_s)
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
            await asyncio.to_thread(proc.wait)
        else:
            # The leader is gone; anything it left in its group goes too.
            _signal_group(proc.pid, signal.SIGKILL)
        return proc.returncode


def exit_label(code: int | None) -> str:
    """``exit code 0``, ``on SIGTERM``: how a child ended, in words."""
    if code is None:
        return "not started"
    if code < 0:
        return f"on {signal.Signals(-code).name}"
    return f"exit code {code}"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def wait_http_ok(child: Child, url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 2xx; fail at once if the child exits, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if not child.running:
                raise child.failure("exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).is_success:
                    return
            if time.monotonic() >= deadline:
                raise child.failure(f"was not ready at {url} within {timeout_s:.0f}s")
            await asyncio.sleep(0.25)
