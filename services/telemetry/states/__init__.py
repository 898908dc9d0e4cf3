"""Machine states (RUNNING / IDLE / DOWN / MAINTENANCE) derived from telemetry."""
