"""Start-up failures of the local servers point to their log."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from millrace.infra import InfraError
from millrace.infra.kafka import cluster_id
from millrace.infra.process import ensure_ports_free, wait_ready


def test_a_server_that_exits_during_start_up_names_its_log_and_shows_its_tail(
    tmp_path: Path,
) -> None:
    log = tmp_path / "kafka.log"
    log.write_text("INFO starting\nERROR Address already in use\n")
    with pytest.raises(InfraError) as failure:
        wait_ready("kafka", probe=lambda: False, alive=lambda: False, log=log, timeout_s=5)
    assert str(log) in str(failure.value)
    assert "Address already in use" in str(failure.value)


def test_a_server_never_ready_fails_at_the_deadline(tmp_path: Path) -> None:
    log = tmp_path / "pg.log"
    log.write_text("")
    with pytest.raises(InfraError, match="not ready within"):
        wait_ready("postgres", probe=lambda: False, alive=lambda: True, log=log, timeout_s=0)


def test_ports_in_use_are_refused() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(InfraError, match=f"port broker {port}"):
            ensure_ports_free("Kafka broker", {"broker": port})


def test_cluster_ids_never_look_like_an_option() -> None:
    ids = {cluster_id() for _ in range(5_000)}
    assert len(ids) == 5_000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
