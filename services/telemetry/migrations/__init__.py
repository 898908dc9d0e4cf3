"""Plain-SQL migrations of the ``telemetry`` schema (applied by shared.migrations)."""
