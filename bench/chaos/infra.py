"""The run's own Kafka broker and PostgreSQL on free ports under a temporary state dir, which
the faults kill with SIGKILL and start again on the same ports and data.

Starts run on the calling (main) thread: the servers are tied to the thread that started them
(parent-death signal), and a worker thread's exit would take them down with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from millrace.infra.kafka import KafkaConfig, LocalKafka
from millrace.infra.postgres import LocalPostgres, PostgresConfig
from millrace.infra.process import free_port, wait_gone


class Infra:
    def __init__(self, home: Path) -> None:
        self.kafka = LocalKafka(
            KafkaConfig(home / "kafka", free_port(), free_port(), tied_to_caller=True)
        )
        self.postgres = LocalPostgres(
            PostgresConfig(home / "postgres", free_port(), tied_to_caller=True)
        )
        self.bootstrap = ""
        self.database_url = ""

    def start(self) -> None:
        self.bootstrap = self.kafka.start()
        self.database_url = self.postgres.start()

    def kill_kafka(self) -> None:
        _kill_group(self.kafka.status().pid)

    def kill_postgres(self) -> None:
        _kill_group(self.postgres.status().pid)

    def start_kafka(self) -> None:
        self.kafka.start()

    def start_postgres(self) -> None:
        self.postgres.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.postgres.stop()
        with contextlib.suppress(Exception):
            self.kafka.stop()


def _kill_group(pid: int | None) -> None:
    """SIGKILL the server and everything in its process group (PostgreSQL's backends too, so
    no orphan keeps the old shared memory and blocks the restart)."""
    if pid is None:
        raise RuntimeError("the server to kill is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    if not wait_gone(pid, 30.0):
        raise RuntimeError(f"pid {pid} survived SIGKILL")
