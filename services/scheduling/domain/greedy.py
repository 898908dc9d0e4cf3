"""Greedy dispatch: a feasible plan in well under a second, the solver's first incumbent.

Each work order offers its next operation; a priority rule picks one, which goes on the eligible
machine where it finishes first, in the earliest gap long enough (gaps before later work are
used, so the schedule stays active). Several rules run and the best plan is kept: no single rule
wins on every shop, and each run is cheap.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from time import perf_counter

from services.scheduling.domain.model import Plan, Problem, SolveStatus
from services.scheduling.domain.objective import Schedule, evaluate, plan_of, rank
from services.scheduling.domain.objective import assignments_of as _assignments
from services.scheduling.domain.shop import Shop, build_shop
from services.scheduling.domain.timeline import Timeline

# rule(op, start, finish) -> priority key, smaller first
Rule = Callable[[int, int, int], tuple[float, ...]]
# Above this many operations only the rules whose keys never change run: the others re-evaluate
# a work order each time a machine it could use fills, several times per operation.
DYNAMIC_RULES_UP_TO = 2000
# How many heap pops between looks at the clock when a rule runs against a deadline.
CLOCK_EVERY = 64


def dispatch(problem: Problem) -> Plan:
    """The best of the greedy rules' plans (status GREEDY, or EMPTY / INFEASIBLE)."""
    began = perf_counter()
    shop = build_shop(problem)
    schedule = best_greedy(shop)
    return plan_of(shop, schedule, SolveStatus.GREEDY, seconds=perf_counter() - began)


def best_greedy(shop: Shop, *, budget_s: float | None = None) -> Schedule:
    """The best plan of the rules; with ``budget_s``, a rule still running once that much time
    has gone is abandoned and no further rule starts (the first, cheapest rule always runs to
    the end), so a solver's time limit holds on shops where the re-evaluating rules are slow
    (long blocked calendars, a loaded machine)."""
    deadline = None if budget_s is None else perf_counter() + budget_s
    best: tuple[tuple[int, int, int], Schedule] | None = None
    for rule in rules(shop):
        if best is not None and deadline is not None and perf_counter() > deadline:
            break
        schedule = run_rule(shop, rule, deadline=None if best is None else deadline)
        if schedule is None:
            break
        score = rank(evaluate(shop.problem, _assignments(shop, schedule)))
        if best is None or score < best[0]:
            best = (score, schedule)
    return best[1] if best is not None else ()


def remaining_work(shop: Shop) -> list[int]:
    """Per operation: the shortest total duration of it and the rest of its work order."""
    rest = [0] * len(shop.ops)
    for own in shop.jobs:
        total = 0
        for i in reversed(own):
            total += shop.ops[i].min_duration
            rest[i] = total
    return rest


def rules(shop: Shop) -> list[Rule]:
    rest = remaining_work(shop)
    ops = shop.ops
    dynamic = len(ops) <= DYNAMIC_RULES_UP_TO
    due_dates = any(d is not None for d in shop.due)
    far = float(max((d for d in shop.due if d is not None), default=0) + sum(rest) + 1)

    def slack(i: int) -> float:
        due = shop.due[ops[i].job]
        return far if due is None else (due - rest[i]) / shop.weight[ops[i].job]

    # fixed-key rules first: they are the cheap ones a time budget always leaves room for
    found: list[Rule] = []
    if due_dates:
        found.append(lambda i, s, f: (slack(i), i))  # least weighted slack first
    found.append(lambda i, s, f: (-rest[i], i))  # most work remaining first
    if dynamic:
        found.append(lambda i, s, f: (f, -rest[i]))  # earliest finish, most work remaining
        found.append(lambda i, s, f: (s, -rest[i]))  # earliest start (non-delay), most work
        if due_dates:
            found.append(lambda i, s, f: (s, slack(i)))  # non-delay, least slack among equals
    return found


def run_rule(
    shop: Shop, rule: Rule, *, deadline: float | None = None
) -> list[tuple[int, int]] | None:
    """Dispatch every operation by ``rule``; None once ``perf_counter()`` passes ``deadline``.
    Keys can only grow as machines fill, so a popped key that grew on re-evaluation goes back
    into the heap (a lazy priority queue)."""
    ops, jobs = shop.ops, shop.jobs
    lines = [Timeline(b) for b in shop.busy]
    result = [(0, 0)] * len(ops)
    ready = [0] * len(jobs)
    pos = [0] * len(jobs)

    def place(i: int, at: int) -> tuple[int, int, int]:
        earliest = max(at, ops[i].lb)
        best = (0, 0, -1)
        for m, d in ops[i].options:
            s = lines[m].earliest(earliest, d)
            if best[2] < 0 or (s + d, s) < best[:2]:
                best = (s + d, s, m)
        return best

    heap: list[tuple[tuple[float, ...], int]] = []
    for j, own in enumerate(jobs):
        if own:
            f, s, _ = place(own[0], 0)
            heap.append((rule(own[0], s, f), j))
    heapq.heapify(heap)
    popped = 0
    while heap:
        popped += 1
        if deadline is not None and popped % CLOCK_EVERY == 0 and perf_counter() > deadline:
            return None
        key, j = heapq.heappop(heap)
        i = jobs[j][pos[j]]
        f, s, m = place(i, ready[j])
        now_key = rule(i, s, f)
        if now_key > key:
            heapq.heappush(heap, (now_key, j))
            continue
        lines[m].block(s, f)
        result[i] = (m, s)
        ready[j] = f
        pos[j] += 1
        if pos[j] < len(jobs[j]):
            nxt = jobs[j][pos[j]]
            f, s, _ = place(nxt, f)
            heapq.heappush(heap, (rule(nxt, s, f), j))
    return result
