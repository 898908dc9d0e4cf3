"""Telemetry settings (``MILLRACE_TELEMETRY_*`` beside the shared ``MILLRACE_*`` ones)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from services.telemetry.rules.book import load_rules
from shared.durations import parse_duration_ms
from shared.settings import ServiceSettings


class TelemetrySettings(ServiceSettings):
    service_name: str = "telemetry"

    telemetry_windows: str = Field(
        "10s,60s", description="Comma-separated tumbling window sizes, e.g. 10s,60s,5m."
    )
    telemetry_allowed_lateness_ms: int = Field(5_000, ge=0, le=3_600_000)
    telemetry_max_future_skew_ms: int = Field(
        300_000, ge=1_000, description="Readings stamped further ahead of wall clock go to DLQ."
    )
    telemetry_idle_close_ms: int = Field(
        2_000,
        ge=100,
        description="After this long without records, a partition's watermark follows wall clock.",
    )
    telemetry_device_idle_close_ms: int = Field(
        60_000,
        ge=100,
        le=7 * 86_400_000,
        description=(
            "After this long without records from a device, by its partition's log clock (the "
            "records' Kafka timestamps), while other devices keep the partition busy, the "
            "device's clock follows the log clock up to the deadline of its newest windows, "
            "so they close. Keep it above the longest interval at which gateways upload."
        ),
    )
    telemetry_event_time: Literal["device", "partition"] = Field(
        "device",
        description=(
            "Whose clock closes a window: its device's (greatest ts that device sent) or the "
            "partition's (greatest ts of any device on it; windows are sealed ahead then)."
        ),
    )
    telemetry_backfill_horizon_ms: int = Field(
        900_000,
        ge=0,
        le=7 * 86_400_000,
        description=(
            "How far a device's event time may trail its partition's newest device: older "
            "readings are late, and a device quiet that long has its windows closed."
        ),
    )
    telemetry_commit_interval_ms: int = Field(1_000, ge=50, le=60_000)
    telemetry_consumer_group: str = "millrace-telemetry"
    telemetry_role: Literal["all", "windows", "alarms"] = Field(
        "all",
        description=(
            "What this process runs: all (HTTP ingest, windows, alarms and machine states), "
            "windows (HTTP ingest and windows), or alarms (alarms and machine states, in the "
            "consumer group <group>-alarms, no ingest). See docs/decisions/0007-alarms-apart.md."
        ),
    )
    telemetry_max_poll_records: int = Field(5_000, ge=1, le=100_000)
    telemetry_aggregator_enabled: bool = True
    telemetry_ingest_max_body_bytes: int = Field(1_048_576, ge=1_024, le=64 * 1_048_576)
    telemetry_ingest_token_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of accepted ingest bearer tokens (JSON list).",
    )

    telemetry_alarm_rules: Path | None = Field(
        None,
        description="YAML file of alarm and machine-state rules; needs MILLRACE_DATABASE_URL.",
    )

    telemetry_alarm_snapshot_interval_ms: int = Field(
        5_000,
        ge=0,
        le=600_000,
        description="How often alarm/state engines are snapshotted (0: at every commit).",
    )

    @property
    def runs_windows(self) -> bool:
        return self.telemetry_role != "alarms"

    @property
    def runs_alarms(self) -> bool:
        return self.telemetry_role != "windows"

    @property
    def alarm_rules_in_use(self) -> Path | None:
        """The rules file this process evaluates: none in the windows role, which ignores it."""
        return self.telemetry_alarm_rules if self.runs_alarms else None

    @property
    def telemetry_group(self) -> str:
        """The consumer group of this role: the alarms role has a group of its own, so it reads
        every partition beside the windows role instead of sharing the partitions with it."""
        group = self.telemetry_consumer_group
        return f"{group}-alarms" if self.telemetry_role == "alarms" else group

    @property
    def window_sizes_ms(self) -> tuple[int, ...]:
        return tuple(sorted({parse_duration_ms(p) for p in self.telemetry_windows.split(",")}))

    @field_validator("telemetry_ingest_token_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("ingest tokens are configured as lowercase SHA-256 hex digests")
        return value

    @model_validator(mode="after")
    def _check_windows(self) -> Self:
        sizes = self.window_sizes_ms
        if not sizes or min(sizes) < 100:
            raise ValueError("window sizes must be at least 100ms")
        if self.env == "prod" and self.runs_windows and not self.telemetry_ingest_token_sha256:
            raise ValueError("env=prod requires MILLRACE_TELEMETRY_INGEST_TOKEN_SHA256")
        if self.telemetry_role == "alarms" and not self.telemetry_aggregator_enabled:
            raise ValueError(
                "MILLRACE_TELEMETRY_ROLE=alarms runs on the aggregator's consumer: it cannot be "
                "combined with MILLRACE_TELEMETRY_AGGREGATOR_ENABLED=false"
            )
        if self.telemetry_role == "alarms" and self.telemetry_alarm_rules is None:
            raise ValueError(
                "MILLRACE_TELEMETRY_ROLE=alarms needs MILLRACE_TELEMETRY_ALARM_RULES: "
                "without rules that process would have nothing to do"
            )
        rules = self.alarm_rules_in_use
        if rules is not None:
            if self.database_url is None:
                raise ValueError(
                    "MILLRACE_TELEMETRY_ALARM_RULES needs MILLRACE_DATABASE_URL: alarm and "
                    "machine-state state must survive a restart"
                )
            try:
                load_rules(rules)
            except OSError as exc:
                raise ValueError(f"cannot read MILLRACE_TELEMETRY_ALARM_RULES: {exc}") from exc
        return self
