"""Orders' bearer tokens (``MILLRACE_ORDERS_TOKENS``): a customer token sees its own orders,
a plant token every order. The mechanism is :mod:`shared.auth`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.orders.settings import OrdersSettings
from shared.auth import Caller, bearer_authenticator

__all__ = ["Caller", "authenticator"]


def authenticator(settings: OrdersSettings) -> Callable[..., Awaitable[Caller]]:
    return bearer_authenticator(settings.orders_tokens)
