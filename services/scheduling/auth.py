"""Scheduling's bearer tokens (``MILLRACE_SCHEDULING_TOKENS``): a plant token sees the whole
plan and may ask for a re-plan; a customer token sees only its own orders' operations in
``GET /v1/schedule`` (see :func:`plant_only`). The mechanism is :mod:`shared.auth`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException

from services.scheduling.settings import SchedulingSettings
from shared.auth import Caller, bearer_authenticator

__all__ = ["Caller", "authenticator", "plant_only"]


def authenticator(settings: SchedulingSettings) -> Callable[..., Awaitable[Caller]]:
    return bearer_authenticator(settings.scheduling_tokens)


def plant_only(caller: Caller) -> None:
    """Machine queues, the Gantt chart, stored plans and re-planning show or change every
    customer's work: customer tokens are refused."""
    if caller.customer is not None:
        raise HTTPException(403, "a plant token is required")
