"""Kafka and PostgreSQL for the demo: given by the environment, reused, or started and owned.

Only servers the demo started itself are stopped at the end; a stack that was already up
(``millrace infra up``, another shell) is left exactly as it was found.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from millrace.infra.paths import state_dir
from millrace.infra.process import InfraError, ServerStatus, port_open
from millrace.infra.stack import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_KAFKA_PORT,
    DEFAULT_POSTGRES_PORT,
    LocalStack,
    local_stack,
)


class Server(Protocol):
    def status(self) -> ServerStatus: ...

    def stop(self, timeout_s: float = 30.0) -> bool: ...


@dataclass
class Endpoints:
    """Where the demo's Kafka and PostgreSQL are, and which of them the demo must stop."""

    bootstrap: str = ""
    database_url: str = ""
    owned: list[Server] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def stack_from_env(env: Mapping[str, str]) -> LocalStack:
    """The local stack on the ports ``millrace infra`` uses (same env overrides)."""

    def port(name: str, default: int) -> int:
        return int(env.get(name, default))

    return local_stack(
        kafka_port=port("MILLRACE_LOCAL_KAFKA_PORT", DEFAULT_KAFKA_PORT),
        controller_port=port("MILLRACE_LOCAL_KAFKA_CONTROLLER_PORT", DEFAULT_CONTROLLER_PORT),
        postgres_port=port("MILLRACE_LOCAL_POSTGRES_PORT", DEFAULT_POSTGRES_PORT),
    )


def bring_up(
    endpoints: Endpoints,
    stack: LocalStack,
    env: Mapping[str, str] = os.environ,
    out: TextIO = sys.stderr,
) -> None:
    """Fill ``endpoints``; a server is added to ``owned`` before it starts, so an interrupted
    start is still cleaned up."""
    endpoints.bootstrap = env.get("MILLRACE_KAFKA_BOOTSTRAP", "")
    if endpoints.bootstrap:
        endpoints.notes.append(f"kafka: {endpoints.bootstrap} (MILLRACE_KAFKA_BOOTSTRAP)")
    else:
        endpoints.bootstrap = _local(
            endpoints, stack.kafka, stack.kafka.cfg.port, lambda: stack.kafka.start(out=out), out
        )
    endpoints.database_url = env.get("MILLRACE_DATABASE_URL", "")
    if endpoints.database_url:
        endpoints.notes.append("postgres: from MILLRACE_DATABASE_URL")
    else:
        endpoints.database_url = _local(
            endpoints, stack.postgres, stack.postgres.cfg.port, stack.postgres.start, out
        )


def _local(
    endpoints: Endpoints, server: Server, port: int, start: Callable[[], str], out: TextIO
) -> str:
    before = server.status()
    if before.running and before.endpoint:
        endpoints.notes.append(f"{before.name}: reused (pid {before.pid}), left running")
        return before.endpoint
    if port_open(f"127.0.0.1:{port}"):
        raise InfraError(
            f"{before.name}: port {port} is taken by a process this state dir did not start "
            f"({state_dir()}); choose another with MILLRACE_LOCAL_{before.name.upper()}_PORT, or "
            "point the demo at it with MILLRACE_KAFKA_BOOTSTRAP / MILLRACE_DATABASE_URL"
        )
    print(f"{before.name}: starting (log {before.log})", file=out, flush=True)
    endpoints.owned.append(server)
    where = start()
    endpoints.notes.append(f"{before.name}: started by the demo (pid {server.status().pid})")
    return where


def tear_down(endpoints: Endpoints, keep: bool, out: TextIO = sys.stderr) -> None:
    """Stop the servers the demo started, unless ``keep``; say what happened to each."""
    for server in reversed(endpoints.owned):
        name = server.status().name
        if keep:
            print(f"{name}: left running (--keep-infra); stop with `millrace infra down`", file=out)
            continue
        stopped = server.stop()
        print(f"{name}: {'stopped' if stopped else 'was not running'}", file=out, flush=True)
    for note in endpoints.notes:
        if "reused" in note or "MILLRACE_" in note:
            print(f"{note}", file=out)
