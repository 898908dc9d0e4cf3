"""``millrace infra up|down|status``: the local Kafka broker and PostgreSQL, without Docker.

``up`` prints shell ``export`` lines on stdout (progress goes to stderr), so
``eval "$(millrace infra up)"`` points the current shell at the local stack.

``up --secure`` starts the broker with Kafka access enforced as in production: SASL_SSL with
SCRAM-SHA-512 (a local CA made on the fly), one principal per service with the ACLs of its
KafkaUser in deploy/k8s/base, and an admin. The exports then name the protocol and CA file; each
principal's password is in a file of its own (listed on stderr), named as the services read it
from MILLRACE_SECRETS_DIR. A broker's data stays in the mode it was made in: to switch, run
``down`` and delete the state dir's kafka/.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from millrace.infra import InfraError
from millrace.infra.kafka import LocalKafka
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
        "--secure",
        action="store_true",
        help="up: SASL_SSL + SCRAM-SHA-512 with the KafkaUser principals and ACLs",
    )
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
        kafka_secure=args.secure,
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
    stack.kafka.start()
    database_url = stack.postgres.start()
    _print_exports(stack.kafka, database_url)
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
        _print_exports(stack.kafka, postgres.endpoint)
        return 0
    return 3


def _describe(st: ServerStatus) -> str:
    if not st.running:
        return f"{st.name}: stopped (log {st.log})"
    return f"{st.name}: running, pid {st.pid}, {st.endpoint}, log {st.log}"


def _print_exports(kafka: LocalKafka, database_url: str) -> None:
    for name, value in kafka.client_env().items():
        print(f"export {name}='{value}'")
    print(f"export MILLRACE_DATABASE_URL='{database_url}'")
    principals = kafka.principals()
    if principals:
        print(
            "kafka principals (set MILLRACE_KAFKA_SASL_USERNAME, and MILLRACE_SECRETS_DIR to the "
            "password file's directory or MILLRACE_KAFKA_SASL_PASSWORD to its content):",
            file=sys.stderr,
        )
    for user, password_file in principals.items():
        print(f"  {user}: {password_file}", file=sys.stderr)
