"""Every orders metric, declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "millrace_orders_http_requests_total",
    "Orders API requests by route and status.",
    ["route", "status"],
)
HTTP_LATENCY = Histogram(
    "millrace_orders_http_request_duration_seconds",
    "Orders API time from request to response start, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PLACED = Counter("millrace_orders_placed_total", "Orders placed (first delivery of a key).")
REPLAYS = Counter(
    "millrace_orders_idempotent_replays_total", "POSTs answered from an existing key.", ["outcome"]
)
OUTBOX_BACKLOG = Gauge("millrace_orders_outbox_backlog", "Outbox rows not yet published.")
RELAY_PUBLISHED = Counter("millrace_orders_relay_published_total", "Outbox rows published.")
RELAY_LAG = Histogram(
    "millrace_orders_relay_lag_seconds",
    "Outbox row creation to Kafka ack.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
)
RELAY_ERRORS = Counter("millrace_orders_relay_errors_total", "Relay rounds that failed.")
PRUNED = Counter(
    "millrace_orders_pruned_rows_total", "Bookkeeping rows deleted by retention.", ["table"]
)
PRUNE_ERRORS = Counter("millrace_orders_prune_errors_total", "Retention rounds that failed.")
CONSUMED = Counter(
    "millrace_orders_consumed_total", "Events consumed by topic and outcome.", ["topic", "outcome"]
)
CONSUMER_RESTARTS = Counter(
    "millrace_orders_consumer_restarts_total", "Consumer restarts after an error."
)
