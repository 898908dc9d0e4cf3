"""The ``Idempotency-Key`` header: required on ``POST /v1/orders``, and a 400 when it is
missing or malformed (a header problem, not an invalid order). FastAPI would answer a missing
required header with 422, so the header is read here and declared in the OpenAPI by hand."""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, Request

NAME = "Idempotency-Key"
MAX_LENGTH = 200
PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
_VALID = re.compile(PATTERN)

OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": NAME,
            "in": "header",
            "required": True,
            "description": "Your unique id of this request: a retry with the same key and body "
            "answers with the order it created (200), the same key with another body 409.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_LENGTH,
                "pattern": PATTERN,
            },
        }
    ]
}


async def idempotency_key(request: Request) -> str:
    """The request's key; 400 when it is missing, too long, or not printable ASCII."""
    key = request.headers.get(NAME)
    if not key:
        raise HTTPException(400, f"{NAME} header required")
    if len(key) > MAX_LENGTH or _VALID.fullmatch(key) is None:
        raise HTTPException(400, f"{NAME}: 1-{MAX_LENGTH} printable ASCII characters")
    return key
