"""Orders settings (``MILLRACE_ORDERS_*`` beside the shared ``MILLRACE_*`` ones)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from shared.auth import TokenSpec
from shared.settings import ServiceSettings

__all__ = ["OrdersSettings", "TokenSpec"]


class OrdersSettings(ServiceSettings):
    service_name: str = "orders"
    http_port: int = Field(8081, ge=0, le=65535)

    orders_tokens: list[TokenSpec] = Field(
        default_factory=list,
        description="JSON list of {sha256, role: customer|plant, customer?, name?}.",
    )
    orders_max_body_bytes: int = Field(65_536, ge=1_024, le=8 * 1_048_576)
    orders_max_lines: int = Field(50, ge=1, le=1_000)
    orders_max_due_days: int = Field(
        730,
        ge=1,
        le=3_650,
        description="Latest due date accepted, in days from today; later ones are refused.",
    )
    orders_consumer_group: str = "millrace-orders"
    orders_consumer_enabled: bool = True
    orders_relay_enabled: bool = True
    orders_relay_batch: int = Field(500, ge=1, le=10_000)
    orders_relay_poll_ms: int = Field(1_000, ge=10, le=60_000)
    orders_page_max: int = Field(100, ge=1, le=1_000)
    orders_outbox_keep_ms: int = Field(
        7 * 24 * 3_600_000, ge=0, description="How long sent outbox rows are kept."
    )
    orders_prune_interval_ms: int = Field(
        3_600_000,
        ge=0,
        le=24 * 3_600_000,
        description="How often sent outbox and expired inbox rows are deleted (0: never).",
    )
    orders_bench_noop: bool = Field(
        False, description="Mount POST /v1/noop (auth + body parsing only) for the benchmark."
    )

    @model_validator(mode="after")
    def _fail_closed(self) -> Self:
        if self.env == "prod" and not self.orders_tokens:
            raise ValueError("env=prod requires MILLRACE_ORDERS_TOKENS")
        digests = [t.sha256 for t in self.orders_tokens]
        if len(set(digests)) != len(digests):
            raise ValueError("MILLRACE_ORDERS_TOKENS lists one digest twice")
        if self.database_url is None:
            raise ValueError("the orders service needs MILLRACE_DATABASE_URL")
        return self
