"""When the simulated shop floor breaks a machine, and which one (seeded, so a run replays).

Breakdowns come every ``every_s`` on average (uniformly between half and one and a half of
it) and last ``repair_s``. The victim is drawn among the machines that still have planned work
waiting, so the break is one the plan has to answer by moving work; with no work waiting any
machine that is not already broken may go.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from millrace.simulator.floor import Floor


@dataclass(frozen=True, slots=True)
class Breakdown:
    machine_id: str
    at: int
    repair_ms: int


class Breakdowns:
    def __init__(self, seed: int, every_s: float, repair_s: float) -> None:
        self.every_ms = int(every_s * 1000)
        self.repair_ms = int(repair_s * 1000)
        self._rng = random.Random(f"millrace-breakdowns:{seed}")
        self.next_at: int | None = None

    def _gap(self) -> int:
        return int(self.every_ms * self._rng.uniform(0.5, 1.5))

    def due(self, now: int, floor: Floor) -> Breakdown | None:
        """The breakdown due at ``now``, applied to ``floor``; None when none is due."""
        if self.every_ms <= 0:
            return None
        if self.next_at is None:
            self.next_at = now + self._gap()
        if now < self.next_at:
            return None
        self.next_at = now + self._gap()
        working = sorted(m for m in floor.jobs if not floor.broken(m))
        waiting = sorted(floor.pending_machines() & set(working))
        pool = waiting or working
        if not pool:
            return None
        victim = self._rng.choice(pool)
        floor.break_machine(victim, now, self.repair_ms)
        return Breakdown(victim, now, self.repair_ms)
