"""Scheduling in the demo: ``millrace run scheduling`` as a child with the demo's tokens and an
accelerated clock, its late count and plan count read from its ``/metrics``, and its Gantt
chart fetched every few seconds into the demo's log dir, so it opens in any browser.

``MILLRACE_SCHEDULING_DURATION_SCALE`` shrinks routing durations (hours) to seconds, so a plan
spans minutes and the simulated shop floor executes it in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from millrace.demo.children import Child, wait_http_ok
from millrace.demo.orders import PLANT_TOKEN, tokens_env

POLL_S = 5.0


@dataclass(frozen=True)
class DemoClock:
    """How the demo accelerates time: routing durations x ``duration_scale``; a breakdown
    lasts ``repair_s`` (the simulator's repair time). ``plan_id`` names the plan, which the
    shop floor and the view follow."""

    duration_scale: float
    repair_s: float
    plan_id: str = "plant"


GANTT_PATH = "/v1/schedule/gantt.svg"


def read_metrics(text: str) -> dict[str, float]:
    """``late``, ``plans`` and ``infeasible`` from the service's Prometheus exposition."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "millrace_scheduling_late_operations":
            out["late"] = sum(s.value for s in family.samples)
        elif family.name == "millrace_scheduling_plans":
            out["plans"] = sum(s.value for s in family.samples if s.name.endswith("_total"))
        elif family.name == "millrace_scheduling_plan_infeasible":
            out["infeasible"] = max((s.value for s in family.samples), default=0.0)
    return out


class SchedulingDemo:
    def __init__(self, env: Mapping[str, str], run_dir: Path, port: int, clock: DemoClock) -> None:
        self.url = f"http://127.0.0.1:{port}"
        child_env = {
            **env,
            "MILLRACE_HTTP_PORT": str(port),
            "MILLRACE_SCHEDULING_TOKENS": tokens_env(),
            "MILLRACE_SCHEDULING_DURATION_SCALE": f"{clock.duration_scale:g}",
            "MILLRACE_SCHEDULING_PLAN_ID": clock.plan_id,
            # On the demo's clock a breakdown lasts about the simulator's repair time, and an
            # operation a few seconds off its plan is worth a re-plan.
            "MILLRACE_SCHEDULING_REPAIR_S": str(max(1, round(clock.repair_s))),
            "MILLRACE_SCHEDULING_REPLAN_DRIFT_S": "10",
            # OEE of each minute, reported 10 s after it ends, so the view shows it soon
            "MILLRACE_SCHEDULING_OEE_PERIOD_S": "60",
            "MILLRACE_SCHEDULING_OEE_GRACE_S": "10",
        }
        argv = [sys.executable, "-m", "millrace.cli", "run", "scheduling"]
        self.child = Child("scheduling", argv, child_env, run_dir / "scheduling.log")
        self.gantt_file = run_dir / "gantt.svg"
        self.figures: dict[str, float] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, ready_timeout_s: float) -> None:
        self.child.start()
        await wait_http_ok(self.child, f"{self.url}/readyz", ready_timeout_s)
        print(f"scheduling: ready on {self.url} (pid {self.child.pid})", file=sys.stderr)
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        headers = {"Authorization": f"Bearer {PLANT_TOKEN}"}
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            while not self._stop.is_set():
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    self.figures = read_metrics((await client.get("/metrics")).text)
                    gantt = await client.get(GANTT_PATH, headers=headers)
                    if gantt.is_success:
                        part = self.gantt_file.with_suffix(".part")
                        part.write_bytes(gantt.content)
                        part.replace(self.gantt_file)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), POLL_S)

    def lines(self) -> list[str]:
        """For the live view: plans and late operations, and where the Gantt chart is."""
        f = self.figures
        late = f"{f['late']:.0f}" if "late" in f else "-"
        plans = f"{f['plans']:.0f}" if "plans" in f else "-"
        infeasible = "   LAST PLAN INFEASIBLE" if f.get("infeasible") else ""
        return [
            f"scheduling {self.url}: plans {plans}   late operations {late}{infeasible}",
            f"Gantt: {self.url}{GANTT_PATH} (header Authorization: Bearer {PLANT_TOKEN}), "
            f"saved every {POLL_S:g} s to {self.gantt_file}",
        ]

    async def stop_polling(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
