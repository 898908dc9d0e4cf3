"""Classic scheduling benchmark files as a :class:`Problem` (``now`` 0, no due dates).

- Job shop, OR-Library: a line ``jobs machines``, then one line per job of ``machine duration``
  pairs in routing order, machines numbered from 0. Lines before the size line (instance name,
  comments) are skipped.
- Job shop, Taillard: a size line, then ``Times`` (one row of durations per job) and ``Machines``
  (one row of machines, numbered from 1).
- Flexible job shop, Brandimarte / Hurink ``.fjs``: ``jobs machines [average]``, then per job
  ``k`` operations, each ``n`` followed by ``n`` pairs ``machine duration``, machines from 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from services.scheduling.domain.model import Machine, OperationSpec, Problem, WorkOrder


class InstanceError(ValueError):
    """The text is not an instance of the format asked for."""


def _ints(line: str) -> list[int] | None:
    try:
        return [int(t) for t in line.split()]
    except ValueError:
        return None


def _problem(machines: int, jobs: Sequence[Sequence[dict[int, int]]], first: int) -> Problem:
    names = [f"M{k + first}" for k in range(machines)]
    work_orders = tuple(
        WorkOrder(
            work_order_id=f"J{j + 1}",
            operations=tuple(
                OperationSpec(seq=s + 1, durations={names[m - first]: d for m, d in op.items()})
                for s, op in enumerate(ops)
            ),
        )
        for j, ops in enumerate(jobs)
    )
    return Problem(now=0, machines=tuple(Machine(n) for n in names), work_orders=work_orders)


def parse_jssp(text: str) -> Problem:
    """An OR-Library or Taillard job-shop instance."""
    if re.search(r"^\s*times\b", text, re.IGNORECASE | re.MULTILINE):
        return _parse_taillard(text)
    rows = [r for r in (_ints(line) for line in text.splitlines() if line.strip()) if r]
    for at, row in enumerate(rows):
        if len(row) == 2 and len(rows) >= at + 1 + row[0] and row[0] > 0 and row[1] > 0:
            n, m = row
            body = rows[at + 1 : at + 1 + n]
            if all(len(r) == 2 * m for r in body):
                jobs = [[{r[k]: r[k + 1]} for k in range(0, 2 * m, 2)] for r in body]
                _check_machines(jobs, m, first=0)
                return _problem(m, jobs, first=0)
    raise InstanceError("no 'jobs machines' line followed by that many rows of machine/duration")


def _parse_taillard(text: str) -> Problem:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    at_times = next(i for i, s in enumerate(lines) if s.lower().startswith("times"))
    at_machines = next((i for i, s in enumerate(lines) if s.lower().startswith("machines")), -1)
    if at_machines < at_times:
        raise InstanceError("a Taillard instance has 'Times' then 'Machines'")
    times = [_ints(s) for s in lines[at_times + 1 : at_machines]]
    order = [_ints(s) for s in lines[at_machines + 1 : at_machines + 1 + len(times)]]
    if not times or any(r is None for r in (*times, *order)) or len(order) != len(times):
        raise InstanceError("'Times' and 'Machines' must be matrices of the same size")
    m = len(times[0] or [])
    jobs = [
        [{mc: d} for mc, d in zip(mr or [], tr or [], strict=True)]
        for tr, mr in zip(times, order, strict=True)
    ]
    _check_machines(jobs, m, first=1)
    return _problem(m, jobs, first=1)


def parse_fjs(text: str) -> Problem:
    """A Brandimarte / Hurink flexible job-shop instance (``.fjs``)."""
    lines = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InstanceError("empty instance")
    head = lines[0].split()
    try:
        n, m = int(head[0]), int(head[1])
    except (IndexError, ValueError) as exc:
        raise InstanceError("the first line must be 'jobs machines [average]'") from exc
    tokens = _tokens(lines[1:])
    try:
        jobs = [[_fjs_operation(tokens) for _ in range(next(tokens))] for _ in range(n)]
    except StopIteration as exc:
        raise InstanceError(f"the file ends before its {n} jobs") from exc
    _check_machines(jobs, m, first=1)
    return _problem(m, jobs, first=1)


def _tokens(lines: Sequence[str]) -> Iterator[int]:
    for line in lines:
        for token in line.split():
            try:
                yield int(token)
            except ValueError as exc:
                raise InstanceError(f"not an integer: {token!r}") from exc


def _fjs_operation(tokens: Iterator[int]) -> dict[int, int]:
    options: dict[int, int] = {}
    for _ in range(next(tokens)):
        machine = next(tokens)
        options[machine] = next(tokens)
    if not options:
        raise InstanceError("an operation with no machine")
    return options


def _check_machines(jobs: Sequence[Sequence[dict[int, int]]], m: int, *, first: int) -> None:
    for ops in jobs:
        for op in ops:
            for machine, duration in op.items():
                if not first <= machine < m + first or duration < 0:
                    raise InstanceError(f"machine {machine} / duration {duration} out of range")


def parse_instance(text: str, fmt: str) -> Problem:
    """``fmt``: ``jssp`` or ``fjsp``."""
    if fmt == "jssp":
        return parse_jssp(text)
    if fmt == "fjsp":
        return parse_fjs(text)
    raise InstanceError(f"unknown format {fmt!r} (jssp or fjsp)")
