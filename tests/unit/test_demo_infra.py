"""Which servers the demo starts, reuses or leaves alone, with fake servers (no processes)."""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any, cast

import pytest

from millrace.demo.infra import Endpoints, bring_up, tear_down
from millrace.infra import InfraError
from millrace.infra.process import ServerStatus, free_port
from millrace.infra.stack import LocalStack


class FakeServer:
    def __init__(self, name: str, running: bool, endpoint: str) -> None:
        self.name, self.running, self.endpoint = name, running, endpoint
        self.cfg = type("Cfg", (), {"port": free_port()})()
        self.starts = self.stops = 0

    def status(self) -> ServerStatus:
        pid = 4242 if self.running else None
        return ServerStatus(self.name, pid, self.endpoint if self.running else None, Path("x"))

    def start(self, **_: Any) -> str:
        self.starts += 1
        self.running = True
        return self.endpoint

    def stop(self, timeout_s: float = 30.0) -> bool:
        self.stops += 1
        was, self.running = self.running, False
        return was


def stack(kafka_running: bool, pg_running: bool) -> tuple[LocalStack, FakeServer, FakeServer]:
    kafka = FakeServer("kafka", kafka_running, "127.0.0.1:1")
    pg = FakeServer("postgres", pg_running, "postgresql://pg")
    return cast(LocalStack, type("S", (), {"kafka": kafka, "postgres": pg})()), kafka, pg


def test_starts_what_is_down_and_stops_only_that() -> None:
    local, kafka, pg = stack(kafka_running=False, pg_running=True)
    endpoints, out = Endpoints(), io.StringIO()
    bring_up(endpoints, local, env={}, out=out)
    assert (endpoints.bootstrap, endpoints.database_url) == ("127.0.0.1:1", "postgresql://pg")
    assert (kafka.starts, pg.starts) == (1, 0)
    tear_down(endpoints, keep=False, out=out)
    assert (kafka.stops, pg.stops) == (1, 0)
    assert "kafka: stopped" in out.getvalue()
    assert "postgres: reused (pid 4242), left running" in out.getvalue()


def test_keep_infra_leaves_started_servers_running() -> None:
    local, kafka, pg = stack(kafka_running=False, pg_running=False)
    endpoints, out = Endpoints(), io.StringIO()
    bring_up(endpoints, local, env={}, out=out)
    tear_down(endpoints, keep=True, out=out)
    assert (kafka.stops, pg.stops) == (0, 0)
    assert "kafka: left running (--keep-infra)" in out.getvalue()


def test_environment_endpoints_are_used_and_nothing_local_is_touched() -> None:
    local, kafka, pg = stack(kafka_running=False, pg_running=False)
    endpoints = Endpoints()
    env = {"MILLRACE_KAFKA_BOOTSTRAP": "broker:9092", "MILLRACE_DATABASE_URL": "postgresql://x"}
    bring_up(endpoints, local, env=env, out=io.StringIO())
    tear_down(endpoints, keep=False, out=io.StringIO())
    assert (endpoints.bootstrap, endpoints.database_url) == ("broker:9092", "postgresql://x")
    assert (kafka.starts, pg.starts, kafka.stops, pg.stops) == (0, 0, 0, 0)


def test_a_port_held_by_a_foreign_process_is_refused_not_reused() -> None:
    local, kafka, _ = stack(kafka_running=False, pg_running=True)
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        kafka.cfg.port = foreign.getsockname()[1]
        endpoints = Endpoints()
        with pytest.raises(InfraError, match="is taken by a process"):
            bring_up(endpoints, local, env={}, out=io.StringIO())
    assert kafka.starts == 0
    assert endpoints.owned == []
