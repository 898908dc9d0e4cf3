"""Every scheduling metric, declared once (alerts and dashboards use these names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "millrace_scheduling_http_requests_total",
    "Scheduling API requests by route and status.",
    ["route", "status"],
)
HTTP_LATENCY = Histogram(
    "millrace_scheduling_http_request_duration_seconds",
    "Scheduling API time from request to response start, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PLANS = Counter(
    "millrace_scheduling_plans_total",
    "Plan versions committed, by main trigger and solver status.",
    ["trigger", "status"],
)
LAST_PLAN = Gauge(
    "millrace_scheduling_last_plan_timestamp_seconds", "When the last plan was committed."
)
INFEASIBLE = Gauge(
    "millrace_scheduling_plan_infeasible",
    "1 when the last plan left operations unplanned or was infeasible, else 0.",
)
LATE = Gauge(
    "millrace_scheduling_late_operations",
    "Operations of the current plan ending after their work order's due time.",
)
SOLVE = Histogram("millrace_scheduling_solve_seconds", "Solver time per re-plan.", buckets=SECONDS)
REPLAN_DELAY = Histogram(
    "millrace_scheduling_replan_delay_seconds",
    "First pending trigger to its plan committed.",
    buckets=SECONDS,
)
OUTBOX_BACKLOG = Gauge("millrace_scheduling_outbox_backlog", "Outbox rows not yet published.")
RELAY_PUBLISHED = Counter("millrace_scheduling_relay_published_total", "Outbox rows published.")
CONSUMED = Counter(
    "millrace_scheduling_consumed_total",
    "Events consumed by topic and outcome.",
    ["topic", "outcome"],
)
FAILURES = Counter(
    "millrace_scheduling_task_restarts_total",
    "Background task restarts after an error (an outage), by task.",
    ["task"],
)
OEE = Gauge(
    "millrace_scheduling_oee_ratio",
    "Last reported OEE period per machine: availability, performance, quality and oee.",
    ["machine", "factor"],
)
OEE_REPORTS = Counter("millrace_scheduling_oee_reports_total", "OEE periods reported.")
PRUNED = Counter(
    "millrace_scheduling_pruned_rows_total", "Rows deleted by retention, by table.", ["table"]
)
SOLVER_FAILURES = Counter(
    "millrace_scheduling_solver_failures_total",
    "Re-plans whose solver raised; the greedy dispatch's plan was committed instead.",
)
