"""``python -m bench.scheduling.first_plan``: time to the first feasible plan on the generated
5,000-operation plant (:mod:`.scale`), without the five-minute search of the scale section.

``dispatch`` runs every greedy rule (the CLI's and the bench's first plan); ``solve`` reports
its first plan through ``progress`` after the greedy rules its budget (a fifth of the limit)
allows. Each is run ``RUNS`` times in this process; the median and the slowest are kept, under
the ``scale_first_plan`` key of ``bench/results/scheduling.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scheduling.scale import scale_problem
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.solver import solve

RESULTS = Path(__file__).resolve().parents[1] / "results" / "scheduling.json"
RUNS, LIMIT_S = 5, 2.0


def measure() -> dict[str, Any]:
    problem = scale_problem()
    dispatched: list[float] = []
    first: list[float] = []
    makespans: set[int] = set()
    for _ in range(RUNS):
        began = time.perf_counter()
        plan = dispatch(problem)
        dispatched.append(time.perf_counter() - began)
        makespans.add(plan.objective.makespan)
        seen: list[float] = []
        solve(problem, time_limit_s=LIMIT_S, workers=2, progress=_recorder(seen))
        first.append(seen[0])  # the greedy plan is always reported first
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "operations": sum(len(wo.operations) for wo in problem.work_orders),
        "runs": RUNS,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "dispatch_s": {"median": _r(statistics.median(dispatched)), "max": _r(max(dispatched))},
        "solve_first_plan_s": {
            "time_limit_s": LIMIT_S,
            "median": _r(statistics.median(first)),
            "max": _r(max(first)),
        },
        "dispatch_makespans": sorted(makespans),
    }


def _recorder(seen: list[float]) -> Callable[[float, int], None]:
    return lambda t, _makespan: seen.append(t)


def _r(value: float) -> float:
    return round(value, 3)


def main() -> None:
    result = measure()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["scale_first_plan"] = result
    RESULTS.write_text(json.dumps(existing, indent=1) + "\n")  # the file's own layout
    print(json.dumps(result))


if __name__ == "__main__":
    main()
