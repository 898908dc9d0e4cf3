"""Scheduling settings (``MILLRACE_SCHEDULING_*`` beside the shared ``MILLRACE_*`` ones)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.auth import TokenSpec
from shared.settings import ServiceSettings

__all__ = ["MaintenanceWindow", "SchedulingSettings", "Shift", "TokenSpec"]


class MaintenanceWindow(BaseModel):
    """Planned maintenance: ``machine_id`` is unavailable in ``[start, end)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    machine_id: str = Field(min_length=1, max_length=128)
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("maintenance start and end need a UTC offset")
        if self.end <= self.start:
            raise ValueError("maintenance end must be after its start")
        return self


class Shift(BaseModel):
    """Working time of a work centre: ``[start, end)`` UTC on each of ``weekdays`` (0 = Monday).
    An ``end`` at or before ``start`` runs past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: list[int] = Field(default=[0, 1, 2, 3, 4], min_length=1)
    start: time
    end: time

    @model_validator(mode="after")
    def _days(self) -> Self:
        if any(d < 0 or d > 6 for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return self


class SchedulingSettings(ServiceSettings):
    service_name: str = "scheduling"
    http_port: int = Field(8082, ge=0, le=65535)

    scheduling_tokens: list[TokenSpec] = Field(
        default_factory=list,
        description="JSON list of {sha256, role: customer|plant, customer?, name?}.",
    )
    scheduling_max_body_bytes: int = Field(16_384, ge=1_024, le=1_048_576)
    scheduling_consumer_group: str = "millrace-scheduling"
    scheduling_consumer_enabled: bool = True
    scheduling_relay_enabled: bool = True
    scheduling_planner_enabled: bool = True
    scheduling_relay_batch: int = Field(500, ge=1, le=10_000)
    scheduling_relay_poll_ms: int = Field(1_000, ge=10, le=60_000)
    scheduling_plan_id: str = Field(
        "plant", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=64
    )
    scheduling_time_limit_s: float = Field(5.0, gt=0, le=3_600)
    scheduling_workers: int = Field(2, ge=1, le=64)
    scheduling_coalesce_ms: int = Field(
        200, ge=0, le=60_000, description="Triggers this close together make one re-plan."
    )
    scheduling_quick_replan: bool = Field(
        True,
        description="On machine-down, publish a repaired plan at once, the solver's as the next.",
    )
    scheduling_repair_s: int = Field(
        3_600, ge=1, le=30 * 86_400, description="Expected repair time of a DOWN machine."
    )
    scheduling_replan_drift_s: int = Field(
        900, ge=1, description="An operation ending this far from its plan triggers a re-plan."
    )
    scheduling_maintenance: list[MaintenanceWindow] = Field(
        default_factory=list, description="JSON list of {machine_id, start, end} (RFC 3339)."
    )
    scheduling_calendar: dict[str, list[Shift]] = Field(
        default_factory=dict,
        description="JSON {work_center: [{weekdays, start, end}]}; absent: always working.",
    )
    scheduling_calendar_days: int = Field(
        14, ge=1, le=366, description="How far ahead the working calendar is laid out."
    )
    scheduling_plans_keep: int = Field(
        1_000, ge=1, description="Plan versions kept (older ones and their assignments go)."
    )
    scheduling_outbox_keep_ms: int = Field(
        7 * 24 * 3_600_000, ge=0, description="How long sent outbox rows are kept."
    )
    scheduling_prune_interval_ms: int = Field(
        3_600_000, ge=0, le=24 * 3_600_000, description="How often retention runs (0: never)."
    )
    scheduling_oee_enabled: bool = True
    scheduling_oee_period_s: int = Field(
        3_600, ge=1, le=86_400, description="OEE period, aligned to the epoch (an hour)."
    )
    scheduling_oee_grace_s: int = Field(
        60, ge=0, le=86_400, description="How long after its end a period is reported."
    )
    scheduling_duration_scale: float = Field(
        1.0,
        gt=0,
        le=1_000,
        description="Routing durations are multiplied by this (demo and tests: 0.01).",
    )

    @model_validator(mode="after")
    def _fail_closed(self) -> Self:
        if self.env == "prod" and not self.scheduling_tokens:
            raise ValueError("env=prod requires MILLRACE_SCHEDULING_TOKENS")
        if self.env == "prod" and self.scheduling_duration_scale != 1.0:
            raise ValueError("MILLRACE_SCHEDULING_DURATION_SCALE is a demo setting (dev only)")
        digests = [t.sha256 for t in self.scheduling_tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("MILLRACE_SCHEDULING_TOKENS lists one digest twice")
        if self.database_url is None:
            raise ValueError("the scheduling service needs MILLRACE_DATABASE_URL")
        return self
