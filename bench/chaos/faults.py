"""The fault schedule: each service SIGKILLed ``kills`` times at seeded random moments (one in
each of ``kills`` equal slots of the run, so they spread over it), the broker restarted once and
PostgreSQL once. Pure: the driver carries it out and records when each fault really happened."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

BROKER_AT = 0.45
POSTGRES_AT = 0.65
FIRST, LAST = 0.05, 0.9


@dataclass(frozen=True)
class Fault:
    at_s: float
    target: str
    """A service name, ``kafka`` or ``postgres``."""
    pause_s: float
    """How long it stays down before it is started again."""


def plan_faults(
    seed: int,
    duration_s: float,
    services: Sequence[str],
    kills: int,
    kill_pause_s: tuple[float, float],
    server_pause_s: float,
) -> list[Fault]:
    rng = random.Random(seed)
    lo, hi = FIRST * duration_s, LAST * duration_s
    slot = (hi - lo) / kills
    faults = [
        Fault(round(lo + (i + rng.random()) * slot, 3), name, round(rng.uniform(*kill_pause_s), 3))
        for name in services
        for i in range(kills)
    ]
    faults.append(Fault(BROKER_AT * duration_s, "kafka", server_pause_s))
    faults.append(Fault(POSTGRES_AT * duration_s, "postgres", server_pause_s))
    return sorted(faults, key=lambda f: (f.at_s, f.target))
