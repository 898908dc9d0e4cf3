"""``millrace infra up|down|status``: the local Kafka broker and PostgreSQL, without Docker.

``up`` prints shell ``export`` lines on stdout (progress goes to stderr), so
``eval "$(millrace infra up)"`` points the current shell at the local stack.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from millrace.infra import InfraError
from millrace.infra.process import ServerStatus
from millrace.infra.stack import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_KAFKA_PORT,
    DEFAULT_POSTGRES_PORT,
    LocalStack,
    local_stack,
)


def _port(env: str, default: int) -> int:
    return int(os.environ.get(env, default))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infra",
        help="start/stop the local Kafka and PostgreSQL (no Docker)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--kafka-port",
        type=int,
        default=_port("MILLRACE_LOCAL_KAFKA_PORT", DEFAULT_KAFKA_PORT),
        help="broker listener on 127.0.0.1 (env MILLRACE_LOCAL_KAFKA_PORT)",
    )
    parser.add_argument(
        "--controller-port",
        type=int,
        default=_port("MILLRACE_LOCAL_KAFKA_CONTROLLER_PORT", DEFAULT_CONTROLLER_PORT),
        help="KRaft controller listener (env MILLRACE_LOCAL_KAFKA_CONTROLLER_PORT)",
    )
    parser.add_argument(
        "--postgres-port",
        type=int,
        default=_port("MILLRACE_LOCAL_POSTGRES_PORT", DEFAULT_POSTGRES_PORT),
        help="PostgreSQL on 127.0.0.1 (env MILLRACE_LOCAL_POSTGRES_PORT)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = local_stack(
        kafka_port=args.kafka_port,
        controller_port=args.controller_port,
        postgres_port=args.postgres_port,
    )
    try:
        if args.action == "up":
            return _up(stack)
        if args.action == "down":
            return _down(stack)
        return _status(stack)
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _up(stack: LocalStack) -> int:
    for server in (stack.kafka, stack.postgres):
        before = server.status()
        if before.running:
            print(f"{before.name}: already running (pid {before.pid})", file=sys.stderr)
        else:
            print(f"{before.name}: starting, log {before.log}", file=sys.stderr)
    bootstrap = stack.kafka.start()
    database_url = stack.postgres.start()
    _print_exports(bootstrap, database_url)
    return 0


def _down(stack: LocalStack) -> int:
    for server in (stack.kafka, stack.postgres):
        name = server.status().name
        stopped = server.stop()
        print(f"{name}: {'stopped' if stopped else 'not running'}", file=sys.stderr)
    return 0


def _status(stack: LocalStack) -> int:
    kafka, postgres = stack.kafka.status(), stack.postgres.status()
    for st in (kafka, postgres):
        print(_describe(st), file=sys.stderr)
    if kafka.endpoint and postgres.endpoint:
        _print_exports(kafka.endpoint, postgres.endpoint)
        return 0
    return 3


def _describe(st: ServerStatus) -> str:
    if not st.running:
        return f"{st.name}: stopped (log {st.log})"
    return f"{st.name}: running, pid {st.pid}, {st.endpoint}, log {st.log}"


def _print_exports(bootstrap: str, database_url: str) -> None:
    print(f"export MILLRACE_KAFKA_BOOTSTRAP={bootstrap}")
    print(f"export MILLRACE_DATABASE_URL='{database_url}'")
