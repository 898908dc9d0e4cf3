"""Fixtures every test suite shares: a real Kafka broker and a real PostgreSQL.

Where they come from, in order: ``MILLRACE_KAFKA_BOOTSTRAP`` / ``MILLRACE_DATABASE_URL``
when set; testcontainers when a Docker engine answers; otherwise the local servers of
:mod:`millrace.infra`, started in a temporary state dir on free ports and stopped at the end
of the session. All are session-scoped and lazy: only tests that request them pay for them.
Unit tests may not request them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from millrace.infra.kafka import KafkaConfig, LocalKafka
from millrace.infra.postgres import LocalPostgres, PostgresConfig
from millrace.infra.process import free_port

INFRA_FIXTURES = {"kafka_bootstrap", "database_url", "new_topic"}
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark by folder, and keep tests/unit free of infrastructure."""
    for item in items:
        path = Path(str(item.path))
        uses_infra = INFRA_FIXTURES & set(getattr(item, "fixturenames", ()))
        if path.is_relative_to(TESTS / "unit") and uses_infra:
            raise pytest.UsageError(f"{item.nodeid}: unit tests may not use {sorted(uses_infra)}")
        if path.is_relative_to(TESTS / "e2e"):
            item.add_marker(pytest.mark.e2e)
        if path.is_relative_to(TESTS / "integration") or uses_infra:
            item.add_marker(pytest.mark.integration)


@functools.cache
def docker_available() -> bool:
    """True only when a Docker engine answers a ping within two seconds."""
    try:
        docker = importlib.import_module("docker")
        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no Docker here"
        return False


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary state dir, traversable by the PostgreSQL system user under root.

    Not under pytest's basetemp: a concurrent pytest run resets that tree to mode 0700,
    which would lock a server running as another user out of its own data.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch_state() -> Iterator[Path]:
    """An empty state dir for tests that start their own local servers."""
    with scratch_dir("millrace-test-state-") as path:
        yield path


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a real Kafka broker (topic auto-creation off on the local broker)."""
    explicit = os.environ.get("MILLRACE_KAFKA_BOOTSTRAP")
    if explicit:
        yield explicit
    elif docker_available():
        from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

        with KafkaContainer().with_kraft() as container:
            yield str(container.get_bootstrap_server())
    else:
        with scratch_dir("millrace-test-kafka-") as home:
            kafka = LocalKafka(
                KafkaConfig(home / "kafka", free_port(), free_port(), tied_to_caller=True)
            )
            try:
                yield kafka.start()
            finally:
                kafka.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """``postgresql://`` URL of a real, empty-at-start PostgreSQL database."""
    explicit = os.environ.get("MILLRACE_DATABASE_URL")
    if explicit:
        yield explicit
    elif docker_available():
        from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

        with PostgresContainer("postgres:17-alpine", driver=None) as container:
            yield str(container.get_connection_url())
    else:
        with scratch_dir("millrace-test-pg-") as home:
            postgres = LocalPostgres(
                PostgresConfig(home / "postgres", free_port(), tied_to_caller=True)
            )
            try:
                yield postgres.start()
            finally:
                postgres.stop()


NewTopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def new_topic(kafka_bootstrap: str, request: pytest.FixtureRequest) -> NewTopicFactory:
    """``await new_topic(partitions=3)`` creates a fresh topic named after the test.

    The local broker does not auto-create topics, so tests create theirs explicitly, as
    services do from the manifest.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]

    async def create(partitions: int = 1, **configs: str) -> str:
        name = f"test.{stem}.{uuid.uuid4().hex[:8]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, partitions, 1, topic_configs=configs or None)]
            )
        finally:
            await admin.close()
        return name

    return create
