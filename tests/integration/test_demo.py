"""``millrace demo`` end to end on a real broker: aggregates show up, nothing is left running."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from millrace.infra.process import pid_alive
from shared.kafka import kafka_ready
from shared.settings import ServiceSettings

pytestmark = pytest.mark.integration


def session_members(leaders: set[int]) -> list[int]:
    """Live processes in the sessions the demo's children led (their own descendants)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in leaders:
            found.append(int(stat.parent.name))
    return found


def test_demo_shows_aggregates_and_leaves_no_process(
    kafka_bootstrap: str, database_url: str, scratch_state: Path
) -> None:
    env = {
        **os.environ,
        "MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MILLRACE_DATABASE_URL": database_url,
        "MILLRACE_STATE_DIR": str(scratch_state),
        "MILLRACE_TELEMETRY_CONSUMER_GROUP": f"demo-test-{uuid.uuid4().hex[:8]}",
    }
    argv = [
        sys.executable, "-m", "millrace.cli", "demo", "--duration", "40",
        "--devices", "6", "--rate", "60", "--windows", "2s,10s", "--lateness-ms", "1000",
    ]  # fmt: skip

    done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=240)

    assert done.returncode == 0, done.stderr[-3000:]
    ticks = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(ticks) >= 35
    assert any(" latest=" in line for line in ticks), done.stdout[-2000:]
    summary = re.search(r"^summary: .*devices (\d+) .*windows (\d+)", done.stdout, re.M)
    assert summary is not None, done.stdout[-2000:]
    assert int(summary.group(1)) == 6
    assert int(summary.group(2)) > 0
    assert re.search(r"^simulator: (\d+)/\1 readings sent", done.stdout, re.M)
    orders = re.search(r"^summary: orders .*: (\d+) placed", done.stdout, re.M)
    assert orders is not None, done.stdout[-2000:]
    assert int(orders.group(1)) > 0

    pids = {int(p) for p in re.findall(r"\(pid (\d+)", done.stderr)}
    assert len(pids) == 3, done.stderr  # telemetry, simulator, orders
    assert not [p for p in pids if pid_alive(p)]
    assert session_members(pids) == []
    assert "kafka: stopped" not in done.stderr
    assert asyncio.run(kafka_ready(ServiceSettings(kafka_bootstrap=kafka_bootstrap)))
