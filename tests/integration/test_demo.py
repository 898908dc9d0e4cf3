"""``millrace demo`` end to end on a real broker: the plant's machines send telemetry, orders are
planned and executed, a broken machine is reported DOWN, and nothing is left running."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support.orders import ensure_manifest_topics, fresh_database
from support.scheduling import EVENT_TOPICS
from support.telemetry import start_group_at_end

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


def test_demo_runs_the_plant_loop_and_leaves_no_process(
    kafka_bootstrap: str, database_url: str, scratch_state: Path
) -> None:
    scheduling_group = f"demo-test-scheduling-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_manifest_topics(kafka_bootstrap))
    for topic in EVENT_TOPICS:  # the plan is made of this run's orders, not earlier tests'
        asyncio.run(start_group_at_end(kafka_bootstrap, scheduling_group, topic))
    env = {
        **os.environ,
        "MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MILLRACE_DATABASE_URL": asyncio.run(fresh_database(database_url)),
        "MILLRACE_STATE_DIR": str(scratch_state),
        "MILLRACE_TELEMETRY_CONSUMER_GROUP": f"demo-test-{uuid.uuid4().hex[:8]}",
        "MILLRACE_SCHEDULING_CONSUMER_GROUP": scheduling_group,
    }
    argv = [
        sys.executable, "-m", "millrace.cli", "demo", "--duration", "60",
        "--windows", "2s,10s", "--lateness-ms", "1000",
        "--order-every", "3", "--break-every", "15", "--repair", "25",
        # a plan of its own: other schedulers may publish on the shared broker's topics
        "--plan-id", f"demo-test-{uuid.uuid4().hex[:8]}",
    ]  # fmt: skip

    done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    ticks = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(ticks) >= 55
    assert any(" latest=" in line for line in ticks), done.stdout[-2000:]
    summary = re.search(r"^summary: .*devices (\d+) .*windows (\d+)", done.stdout, re.M)
    assert summary is not None, done.stdout[-2000:]
    assert int(summary.group(1)) == 10  # the sample plant's machines
    assert int(summary.group(2)) > 0
    assert re.search(r"^simulator: (\d+)/\1 readings sent", done.stdout, re.M)
    orders = re.search(r"^summary: orders .*: (\d+) placed", done.stdout, re.M)
    assert orders is not None, done.stdout[-2000:]
    assert int(orders.group(1)) > 0
    plans = re.search(r"^summary: scheduling .*: plans (\d+)", done.stdout, re.M)
    assert plans is not None, done.stdout[-2000:]
    assert int(plans.group(1)) > 0
    plan = re.search(r"^summary: plan (\d+) operations, (\d+) completed", done.stdout, re.M)
    assert plan is not None, done.stdout[-2000:]
    assert int(plan.group(2)) > 0  # the shop floor executed some of the plan
    downs = {m for line in ticks for m in re.findall(r" down=([^ ]+)", line) if m != "-"}
    assert downs, "no machine was reported DOWN after a breakdown"
    assert (scratch_state / "demo" / "gantt.svg").exists()

    pids = {int(p) for p in re.findall(r"\(pid (\d+)", done.stderr)}
    assert len(pids) == 4, done.stderr  # telemetry, orders, scheduling, simulator
    assert not [p for p in pids if pid_alive(p)]
    assert session_members(pids) == []
    assert "kafka: stopped" not in done.stderr
    assert asyncio.run(kafka_ready(ServiceSettings(kafka_bootstrap=kafka_bootstrap)))
