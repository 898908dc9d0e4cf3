"""The local stack (Kafka + PostgreSQL) under one state directory, as the CLI and tests use it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from millrace.infra.kafka import KafkaConfig, LocalKafka
from millrace.infra.paths import state_dir
from millrace.infra.postgres import LocalPostgres, PostgresConfig

DEFAULT_KAFKA_PORT = 19092
DEFAULT_CONTROLLER_PORT = 19093
DEFAULT_POSTGRES_PORT = 15432


@dataclass(frozen=True)
class LocalStack:
    kafka: LocalKafka
    postgres: LocalPostgres


def local_stack(
    root: Path | None = None,
    kafka_port: int = DEFAULT_KAFKA_PORT,
    controller_port: int = DEFAULT_CONTROLLER_PORT,
    postgres_port: int = DEFAULT_POSTGRES_PORT,
    kafka_secure: bool = False,
) -> LocalStack:
    """Both servers with their files under ``root`` (default: the state dir)."""
    base = root or state_dir()
    kafka = KafkaConfig(base / "kafka", kafka_port, controller_port, secure=kafka_secure)
    return LocalStack(
        kafka=LocalKafka(kafka),
        postgres=LocalPostgres(PostgresConfig(base / "postgres", postgres_port)),
    )
