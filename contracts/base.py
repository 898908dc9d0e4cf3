"""Base class shared by every event contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """An event's data as it travels in the Kafka value.

    Consumers are tolerant readers: unknown fields are ignored, which is what lets a producer add
    an optional field within a major version without breaking anyone.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)
