"""``millrace schedule solve FILE``: solve a job-shop or flexible job-shop benchmark file with
the scheduling service's solver (or the plain CP-SAT model, ``--plain``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from services.scheduling.domain.gantt import gantt_svg
from services.scheduling.domain.model import Plan
from services.scheduling.domain.plain import solve_plain
from services.scheduling.domain.solver import solve
from services.scheduling.instances import InstanceError, parse_instance

FORMATS = {".fjs": "fjsp", ".fjsp": "fjsp", ".jss": "jssp", ".jsp": "jssp", ".txt": "jssp"}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("schedule", help="production scheduling (flexible job shop)")
    sub = parser.add_subparsers(dest="action", required=True)
    cmd = sub.add_parser(
        "solve", help="solve an OR-Library job-shop or Brandimarte/Hurink .fjs instance file"
    )
    cmd.add_argument("file", help="instance file")
    cmd.add_argument(
        "--format", choices=("jssp", "fjsp"), help="default: from the extension (.fjs: fjsp)"
    )
    cmd.add_argument("--time-limit", type=float, default=10.0, help="seconds (default 10)")
    cmd.add_argument("--workers", type=int, default=2, help="CP-SAT workers (default 2)")
    cmd.add_argument("--gantt", metavar="OUT.svg", help="write the plan as an SVG Gantt chart")
    cmd.add_argument(
        "--plain", action="store_true", help="the textbook CP-SAT model alone, as a baseline"
    )
    cmd.add_argument("--json", action="store_true", help="print the result as one JSON object")
    cmd.set_defaults(func=run_solve)


def guess_format(path: str) -> str:
    return FORMATS.get(Path(path).suffix.lower(), "jssp")


def run_solve(args: argparse.Namespace) -> int:
    fmt = args.format or guess_format(args.file)
    try:
        problem = parse_instance(Path(args.file).read_text(), fmt)
    except (InstanceError, OSError) as exc:
        print(f"cannot read {args.file} as {fmt}: {exc}")
        return 2
    run = solve_plain if args.plain else solve
    plan = run(problem, time_limit_s=args.time_limit, workers=args.workers)
    if args.gantt:
        Path(args.gantt).write_text(gantt_svg(problem, plan, title=Path(args.file).name))
    summary = report(plan, solver="plain" if args.plain else "millrace")
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key + ':':<13}{value}")
    return 0 if plan.assignments else 1


def report(plan: Plan, *, solver: str) -> dict[str, Any]:
    planned = bool(plan.assignments)
    return {
        "solver": solver,
        "makespan": plan.objective.makespan if planned else None,
        "lower_bound": plan.lower_bound,
        "status": plan.status.value if planned else "no plan within the limit",
        "seconds": round(plan.solve_seconds, 3),
        "operations": len(plan.assignments),
    }
