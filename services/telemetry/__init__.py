"""Telemetry: HTTP ingest of device readings and the event-time window aggregator."""
