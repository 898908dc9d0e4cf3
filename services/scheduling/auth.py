"""Bearer-token authentication, fail closed.

Tokens are configured as SHA-256 digests and compared in constant time; with no tokens
configured every request is refused. The token itself is never logged: a caller is known by
its principal (``customer:<id>`` or ``plant:<name>``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.scheduling.settings import SchedulingSettings

# Declares the scheme in the OpenAPI; the 401 is ours (HTTPBearer's own is a 403).
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


@dataclass(frozen=True)
class Caller:
    principal: str
    customer: str | None  # None: a plant token, which sees the whole plan

    def may_see(self, customer: str) -> bool:
        return self.customer is None or self.customer == customer


def authenticator(settings: SchedulingSettings) -> Callable[..., Awaitable[Caller]]:
    tokens = [(bytes.fromhex(t.sha256), t) for t in settings.scheduling_tokens]

    async def authenticate(credentials: Bearer = None) -> Caller:
        token = credentials.credentials.strip() if credentials is not None else ""
        if not token:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        given = hashlib.sha256(token.encode()).digest()
        match = None
        for digest, spec in tokens:
            if hmac.compare_digest(given, digest):
                match = spec
        if match is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        if match.customer is not None:
            return Caller(f"customer:{match.customer}", match.customer)
        return Caller(f"plant:{match.name or match.sha256[:12]}", None)

    return authenticate


def plant_only(caller: Caller) -> None:
    """Machine queues, the Gantt chart, stored plans and re-planning show or change every
    customer's work: customer tokens are refused."""
    if caller.customer is not None:
        raise HTTPException(403, "a plant token is required")
