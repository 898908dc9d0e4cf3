"""Benchmark file parsers and ``millrace schedule solve`` on small instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.scheduling_validator import violations

from millrace.cli import main
from services.scheduling.domain.solver import solve
from services.scheduling.instances import InstanceError, parse_fjs, parse_instance, parse_jssp

# ft06-like: 3 jobs, 3 machines, machines numbered from 0, a name line and a comment before it
ORLIB = """ instance tiny
 +++++++++++++++++++++++++++++
 a comment line the parser skips
 3 3
 0 3 1 2 2 2
 0 2 2 1 1 4
 1 4 2 3 0 1
"""

TAILLARD = """Nb of jobs, Nb of Machines, Time seed, Machine seed, Upper bound, Lower bound
           2           2     1     2    10     9
Times
 4 5
 3 2
Machines
 1 2
 2 1
"""

# 2 jobs, 2 machines (numbered from 1), average 1.5 machines per operation
FJS = """2 2 1.5
2  2 1 3 2 5  1 2 4
1  1 1 6
"""


def test_or_library_job_shop() -> None:
    problem = parse_jssp(ORLIB)
    assert [m.machine_id for m in problem.machines] == ["M0", "M1", "M2"]
    first = problem.work_orders[0]
    assert [dict(op.durations) for op in first.operations] == [{"M0": 3}, {"M1": 2}, {"M2": 2}]
    assert problem.work_orders[2].operations[0].durations == {"M1": 4}
    assert problem.now == 0
    assert all(wo.due is None for wo in problem.work_orders)


def test_taillard_job_shop_numbers_machines_from_one() -> None:
    problem = parse_jssp(TAILLARD)
    assert [m.machine_id for m in problem.machines] == ["M1", "M2"]
    ops = [[dict(op.durations) for op in wo.operations] for wo in problem.work_orders]
    assert ops == [[{"M1": 4}, {"M2": 5}], [{"M2": 3}, {"M1": 2}]]


def test_flexible_job_shop() -> None:
    problem = parse_fjs(FJS)
    ops = [[dict(op.durations) for op in wo.operations] for wo in problem.work_orders]
    assert ops == [[{"M1": 3, "M2": 5}, {"M2": 4}], [{"M1": 6}]]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2 2\n0 1 1 1\n", "jssp"),  # one job row of two announced
        ("1 2\n0 1 5 1\n", "jssp"),  # machine 5 of 2
        ("2 2\n1 1 1 3\n", "fjsp"),  # ends before its second job
        ("1 2\n1 1 3 3\n", "fjsp"),  # machine 3 of 2
        ("x y\n", "fjsp"),
        ("1 1\n1 1 1 3\n", "csv"),
    ],
)
def test_malformed_instances_are_rejected(text: str, fmt: str) -> None:
    with pytest.raises(InstanceError):
        parse_instance(text, fmt)


def test_cli_solves_a_file_and_writes_a_gantt_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.jss"
    path.write_text(ORLIB)
    svg = tmp_path / "plan.svg"
    code = main(
        ["schedule", "solve", str(path), "--time-limit", "2", "--gantt", str(svg), "--json"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    # small enough for CP-SAT to prove its plan optimal: the bound meets the makespan
    assert result["status"] == "optimal"
    assert result["makespan"] == result["lower_bound"]
    assert result["operations"] == 9
    assert "<svg" in svg.read_text()
    plain = main(["schedule", "solve", str(path), "--time-limit", "2", "--plain", "--json"])
    assert plain == 0
    assert json.loads(capsys.readouterr().out)["makespan"] == result["makespan"]


def test_cli_guesses_the_flexible_format_and_prints_the_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.fjs"
    path.write_text(FJS)
    assert main(["schedule", "solve", str(path), "--time-limit", "1", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    # J2 needs M1 for 6 s and J1 at least 7 s: whichever goes first on M1, 9 s is the best
    assert "makespan:    9" in out
    for field in ("lower_bound:", "status:", "seconds:"):
        assert field in out


def test_cli_reports_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.fjs"
    path.write_text("not an instance\n")
    assert main(["schedule", "solve", str(path)]) == 2
    assert "cannot read" in capsys.readouterr().out


def test_parsed_instance_plans_validate() -> None:
    problem = parse_fjs(FJS)
    plan = solve(problem, time_limit_s=1, workers=1)
    assert violations(problem, plan) == []
