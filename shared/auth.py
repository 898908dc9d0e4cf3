"""Bearer-token authentication every HTTP API shares, fail closed.

Tokens are configured as SHA-256 digests and compared in constant time; with no tokens
configured every request is refused. The token itself is never logged: a caller is known by
its principal (``customer:<id>`` or ``plant:<name>``). A ``customer`` token acts for that
customer only; a ``plant`` token acts for the whole plant. What each role may see is the
service's decision (its API checks ``Caller.customer``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

# Declares the scheme in the OpenAPI; the 401 is ours (HTTPBearer's own is a 403).
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class TokenSpec(BaseModel):
    """One accepted bearer token, configured by its SHA-256 digest, never in clear."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Literal["customer", "plant"]
    customer: str | None = Field(None, min_length=1, max_length=128)
    name: str = Field("", max_length=64, description="Shown in logs instead of the token.")

    @model_validator(mode="after")
    def _customer_iff_customer_role(self) -> Self:
        if (self.role == "customer") != (self.customer is not None):
            raise ValueError("a customer token names its customer; a plant token names none")
        return self


@dataclass(frozen=True)
class Caller:
    principal: str
    customer: str | None  # None: a plant token

    def may_see(self, customer: str) -> bool:
        return self.customer is None or self.customer == customer


def bearer_authenticator(specs: Sequence[TokenSpec]) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency that answers 401 unless the bearer token is one of ``specs``."""
    tokens = [(bytes.fromhex(t.sha256), t) for t in specs]

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
