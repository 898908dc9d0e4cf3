"""What the live view knows of the plan and its execution, per machine.

Fed from ``scheduling.operation-scheduled.v1`` (the latest assignment of each operation wins,
as for the shop floor) and ``production.operation-started.v1`` / ``-completed.v1``. A machine's
current operation is the one started on it and not completed; its next one is the earliest
planned operation assigned to it that has not started. An operation published again on
another machine is counted as moved: that is the plan answering a breakdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

OpKey = tuple[str, int]


def clock_ms(epoch_ms: int) -> str:
    """``14:03:27``: an epoch-ms time of day, UTC."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%H:%M:%S")


@dataclass(frozen=True, slots=True)
class Planned:
    work_order_id: str
    seq: int
    sku: str
    machine_id: str
    start_ms: int
    end_ms: int

    @property
    def label(self) -> str:
        """``3f9a2c1b/1 #20 frame-road``: short enough for a table cell."""
        order_id, _, line = self.work_order_id.rpartition("/")
        return f"{order_id[:8]}/{line} #{self.seq} {self.sku}"


@dataclass
class PlanBoard:
    """``plan_id``: show that plan only (another scheduler may publish on the same topic)."""

    plan_id: str | None = None
    plan: dict[OpKey, Planned] = field(default_factory=dict)
    running: dict[str, OpKey] = field(default_factory=dict)
    started: set[OpKey] = field(default_factory=set)
    completed: set[OpKey] = field(default_factory=set)
    moved: int = 0
    last_move: str = ""

    def record_scheduled(self, data: Mapping[str, Any]) -> None:
        if self.plan_id is not None and data.get("plan_id") != self.plan_id:
            return
        p = Planned(
            work_order_id=str(data["work_order_id"]),
            seq=int(data["operation_seq"]),
            sku=str(data["sku"]),
            machine_id=str(data["machine_id"]),
            start_ms=int(data["planned_start"]),
            end_ms=int(data["planned_end"]),
        )
        key = (p.work_order_id, p.seq)
        before = self.plan.get(key)
        if before is not None and before.machine_id != p.machine_id and key not in self.started:
            self.moved += 1
            self.last_move = f"{p.label}: {before.machine_id} -> {p.machine_id}"
        self.plan[key] = p

    def record_started(self, data: Mapping[str, Any]) -> None:
        key = (str(data["work_order_id"]), int(data["operation_seq"]))
        if key in self.plan and key not in self.completed:
            self.started.add(key)
            self.running[str(data["machine_id"])] = key

    def record_completed(self, data: Mapping[str, Any]) -> None:
        key = (str(data["work_order_id"]), int(data["operation_seq"]))
        if key not in self.plan:
            return
        self.started.add(key)
        self.completed.add(key)
        machine = str(data["machine_id"])
        if self.running.get(machine) == key:
            del self.running[machine]

    def current(self, machine_id: str) -> Planned | OpKey | None:
        """The operation running on the machine (its plan entry when known)."""
        key = self.running.get(machine_id)
        if key is None:
            return None
        return self.plan.get(key, key)

    def next_up(self, machine_id: str) -> Planned | None:
        waiting = [
            p for k, p in self.plan.items() if p.machine_id == machine_id and k not in self.started
        ]
        return min(waiting, key=lambda p: (p.start_ms, p.work_order_id, p.seq), default=None)

    def machines(self) -> set[str]:
        return {p.machine_id for p in self.plan.values()} | set(self.running)

    def waiting(self) -> int:
        return sum(1 for k in self.plan if k not in self.started)
