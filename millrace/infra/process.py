"""Detached server processes: spawn, find again by pid file, stop, and wait for readiness."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
PR_SET_PDEATHSIG = 1


class InfraError(RuntimeError):
    """A local server failed to start or stop; the message names its log file."""


@dataclass(frozen=True)
class ServerStatus:
    """What ``millrace infra status`` reports for one server."""

    name: str
    pid: int | None
    endpoint: str | None
    log: Path

    @property
    def running(self) -> bool:
        return self.pid is not None


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, for error messages that explain themselves."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def failure(what: str, log: Path, reason: str) -> InfraError:
    return InfraError(f"{what} {reason}; log: {log}\n--- last lines ---\n{log_tail(log)}")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (an exited child nobody reaped yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def read_pid(pid_file: Path, marker: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process still runs ``marker``.

    Checking the command line guards against a recycled pid after a reboot.
    """
    try:
        pid = int(pid_file.read_text().split(maxsplit=1)[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    line = cmdline(pid)
    if line and marker not in line:
        return None
    return pid


def spawn_detached(
    argv: Sequence[str],
    log: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    death_signal: int | None = None,
    **kw: Any,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, so Ctrl-C in this terminal won't reach it.

    With ``death_signal`` (Linux), the server receives that signal when the thread that
    started it dies, so a test run killed with SIGKILL leaves no server behind.
    """
    if death_signal is not None and sys.platform == "linux":
        kw["preexec_fn"] = functools.partial(_set_parent_death_signal, death_signal)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )


def _set_parent_death_signal(signum: int) -> None:
    """Runs in the child after its uid change (which would clear the setting) and before exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def stop_group(pid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM the process group led by ``pid``, wait, then SIGKILL whatever is left."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    if wait_gone(pid, timeout_s):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    wait_gone(pid, 10.0)


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a private loop in a worker thread.

    Callers may already be inside an event loop (pytest-asyncio's session loop, an async
    CLI); ``asyncio.run`` there would fail or unset that loop.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def port_open(hostport: str, timeout_s: float = 1.0) -> bool:
    """A cheap TCP check before a real client request, which would log noisy errors."""
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A loopback port free right now (tests, parallel stacks); the OS picks it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(
    what: str,
    probe: Callable[[], bool],
    alive: Callable[[], bool],
    log: Path,
    timeout_s: float,
) -> None:
    """Poll ``probe`` until it succeeds; fail fast if the process exits, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not alive():
            raise failure(what, log, "exited during start-up")
        if probe():
            return
        if time.monotonic() >= deadline:
            raise failure(what, log, f"was not ready within {timeout_s:.0f}s")
        time.sleep(0.25)


def ensure_ports_free(what: str, ports: dict[str, int]) -> None:
    """Refuse to start when another process already listens on one of our ports: its readiness
    probe would answer for us and we would silently use someone else's server."""
    taken = [f"{name} {port}" for name, port in ports.items() if port_open(f"127.0.0.1:{port}")]
    if taken:
        raise InfraError(
            f"cannot start the local {what}: port {', '.join(taken)} on 127.0.0.1 is used by "
            "another process (choose other ports with the MILLRACE_LOCAL_* settings or stop it)"
        )
