"""Every telemetry metric, declared once (many equal observations of a histogram in one step:
``kafka.internals.observe_many``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter("millrace_telemetry_records_total", "Kafka records consumed from readings.")
READINGS = Counter("millrace_telemetry_readings_total", "Readings aggregated into windows.")
LATE = Counter(
    "millrace_telemetry_late_readings_total",
    "Readings that arrived after their window closed (counted per window size, not mixed in).",
    ["window"],
)
LATE_SENT = Counter(
    "millrace_telemetry_late_readings_sent_total",
    "Late readings sent to telemetry.readings.v1.late (their device's window was emitted).",
)
BAD_QUALITY = Counter(
    "millrace_telemetry_bad_quality_readings_total", "Readings of quality 'bad', not aggregated."
)
FUTURE = Counter(
    "millrace_telemetry_future_readings_total", "Records with readings beyond the allowed skew."
)
PROCESSING_ERRORS = Counter(
    "millrace_telemetry_processing_errors_total",
    "Records whose processing raised (dead-lettered, the partition moves on), windows that could "
    "not be encoded and alarm deadlines whose rule raised, by stage (decode, windows, alarms, "
    "emit).",
    ["stage"],
)
WINDOWS_EMITTED = Counter(
    "millrace_telemetry_windows_emitted_total", "Windows emitted to aggregates.", ["window"]
)
WINDOWS_SENT_SEALED = Counter(
    "millrace_telemetry_windows_sent_sealed_total",
    "Windows sent in record batches prepared during the allowed lateness (the rest are made at "
    "their close).",
)
SEALED_WINDOWS_VOIDED = Counter(
    "millrace_telemetry_sealed_windows_voided_total",
    "Windows sealed ahead whose boundary was made again at its close (a reading reached one of "
    "them after its seal).",
)
OPEN_WINDOWS = Gauge("millrace_telemetry_open_windows", "Windows open in memory.")
WATERMARK_LAG = Gauge(
    "millrace_telemetry_watermark_lag_seconds",
    "Wall clock minus the partition's watermark.",
    ["partition"],
)
CONSUMER_LAG = Gauge(
    "millrace_telemetry_consumer_lag", "High watermark minus position.", ["partition"]
)
EMIT_LAG = Histogram(
    "millrace_telemetry_emit_lag_seconds",
    "Wall clock at emit minus (window end + allowed lateness).",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RESTARTS = Counter(
    "millrace_telemetry_aggregator_restarts_total", "Aggregator restarts after an error."
)
HTTP_REQUESTS = Counter(
    "millrace_telemetry_http_requests_total",
    "HTTP responses by route and status (every status, 500s included).",
    ["route", "status"],
)
HTTP_LATENCY = Histogram(
    "millrace_telemetry_http_request_duration_seconds",
    "HTTP time from request to response start, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_REQUESTS = Counter(
    "millrace_telemetry_ingest_requests_total", "HTTP ingest requests by status.", ["status"]
)
INGEST_READINGS = Counter(
    "millrace_telemetry_ingest_readings_total", "Readings accepted by HTTP ingest."
)
ALARMS_RAISED = Counter(
    "millrace_telemetry_alarms_raised_total", "Alarms raised (replays count again).", ["severity"]
)
ALARMS_CLEARED = Counter("millrace_telemetry_alarms_cleared_total", "Alarms cleared.")
ACTIVE_ALARMS = Gauge(
    "millrace_telemetry_active_alarms", "Alarms active on the partitions this replica owns."
)
STATE_CHANGES = Counter(
    "millrace_telemetry_machine_state_changes_total", "Machine-state changes published.", ["state"]
)
