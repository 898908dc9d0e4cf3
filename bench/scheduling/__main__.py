"""``python -m bench.scheduling``: writes ``bench/results/scheduling.json``.

Each instance of ``instances.json`` is solved twice by ``millrace schedule solve`` in its own
process, as a user would run it: the solver, then ``--plain`` (the textbook CP-SAT model, no
greedy plan, hints or neighbourhood search), both at the same time limit and workers. The scale
section solves a generated 5,000-operation plant for five minutes in process and records when
each better plan appeared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.scheduling import replan
from bench.scheduling.scale import scale_problem
from services.scheduling.domain.greedy import dispatch
from services.scheduling.domain.solver import solve

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[0] / "results" / "scheduling.json"


def run_cli(path: Path, fmt: str, limit: float, workers: int, *, plain: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "millrace.cli", "schedule", "solve", str(path), "--format", fmt,
           "--time-limit", str(limit), "--workers", str(workers), "--json"]  # fmt: skip
    if plain:
        cmd.append("--plain")
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - began, 2)
    return result


def gap(value: int | None, best: int) -> float | None:
    return None if value is None else round((value - best) / best, 4)


def quality(limit: float, workers: int, only: set[str]) -> list[dict[str, Any]]:
    rows = []
    for spec in json.loads((HERE / "instances.json").read_text()):
        if only and spec["name"] not in only:
            continue
        path = HERE / "instances" / spec["file"]
        ours = run_cli(path, spec["format"], limit, workers, plain=False)
        plain = run_cli(path, spec["format"], limit, workers, plain=True)
        best = spec["best_known"]
        row = {
            "instance": spec["name"],
            "format": spec["format"],
            "operations": ours["operations"],
            "best_known": best,
            "best_known_is_optimal": spec["optimal"],
            "ours": ours,
            "plain": plain,
            "gap_ours": gap(ours["makespan"], best),
            "gap_plain": gap(plain["makespan"], best),
        }
        print(
            f"{spec['name']:>8} {ours['operations']:>5} ops  ours {ours['makespan']} "
            f"({_pct(row['gap_ours'])})  plain {plain['makespan']} ({_pct(row['gap_plain'])})  "
            f"best {best}",
            flush=True,
        )
        rows.append(row)
    return rows


def scale(seconds: float, workers: int) -> dict[str, Any]:
    problem = scale_problem()
    began = time.perf_counter()
    greedy = dispatch(problem)
    first = time.perf_counter() - began
    trace: list[tuple[float, int]] = []
    plan = solve(
        problem,
        time_limit_s=seconds,
        workers=workers,
        progress=lambda t, c: trace.append((round(t, 2), c)),
    )
    best = min(c for _, c in trace)
    within = next(t for t, c in trace if c <= best * 1.05)
    return {
        "operations": sum(len(wo.operations) for wo in problem.work_orders),
        "machines": len(problem.machines),
        "seconds_to_first_plan_dispatch": round(first, 3),
        "greedy_makespan": greedy.objective.makespan,
        "time_limit_s": seconds,
        "best_makespan": best,
        "plan_makespan": plan.objective.makespan,
        "lower_bound": plan.lower_bound,
        "status": plan.status.value,
        "seconds_to_first_plan_solve": trace[0][0],
        "seconds_to_within_5pct_of_best": within,
        "improvements": trace,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scheduling")
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale-seconds", type=float, default=300.0)
    parser.add_argument("--only", nargs="*", default=[], help="instance names to run")
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument(
        "--no-replan", action="store_true", help="skip the service's re-planning run on Kafka"
    )
    args = parser.parse_args()
    rows = quality(args.time_limit, args.workers, set(args.only))
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "time_limit_s": args.time_limit,
        "workers": args.workers,
        "instances": rows,
        "summary": {
            "ours_better": sum(
                1 for r in rows if _lt(r["ours"]["makespan"], r["plain"]["makespan"])
            ),
            "equal": sum(1 for r in rows if r["ours"]["makespan"] == r["plain"]["makespan"]),
            "plain_better": sum(
                1 for r in rows if _lt(r["plain"]["makespan"], r["ours"]["makespan"])
            ),
        },
    }
    if not args.no_scale:
        result["scale"] = scale(args.scale_seconds, args.workers)
        print(json.dumps({k: v for k, v in result["scale"].items() if k != "improvements"}))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # other parts of the scheduling benchmark (re-planning) keep their own keys in the file
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing.update(result)
    RESULTS.write_text(json.dumps(existing, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    if not args.no_replan:
        replan.main()  # the service on Kafka; adds its "replan" key to the same file


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _lt(a: int | None, b: int | None) -> bool:
    """``a`` is better: a makespan beats none (no plan within the limit)."""
    return a is not None and (b is None or a < b)


if __name__ == "__main__":
    main()
