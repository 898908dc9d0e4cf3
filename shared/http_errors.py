"""Error answers every HTTP API shares: bad input is a 4xx with the reason, never a 500.

FastAPI's own 422 handler echoes the offending input back, and cannot serialise it when it is
``NaN`` or ``Infinity`` (``json.loads`` accepts both, JSON does not), so one bad number turned
into a 500. The handler here answers with location, message and type only. A body that is not
JSON at all is a 400; a well-formed body that does not validate is a 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class Issue(BaseModel):
    """One reason a request was refused: where (``["body", "lines", 0, "sku"]``) and why."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every 4xx and 5xx: a sentence, a list of sentences, or a list of issues."""

    detail: str | list[Issue | str]


DESCRIPTIONS = {
    400: "the body is not JSON",
    401: "missing or invalid bearer token",
    403: "the token may not do this",
    404: "not found, or not yours",
    409: "conflicts with the current state",
    413: "body too large",
    422: "invalid request; the body says why",
    503: "a dependency is unavailable; retry after Retry-After seconds",
}


def error_responses(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error ``codes``, each with the :class:`Problem` schema; a
    keyword ``e409="..."`` overrides a code's description."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        text = described.get(f"e{code}", DESCRIPTIONS[code])
        out[code] = {"model": Problem, "description": text}
    return out


def issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The validation errors without their inputs (which may not be JSON at all)."""
    return [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON, else 422 with each issue."""
    for e in exc.errors():
        if e.get("type") == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "JSON decode error")
            where = e.get("loc", ("body", 0))[-1]
            return JSONResponse({"detail": f"body is not JSON: {why} at {where}"}, 400)
    return JSONResponse({"detail": issues(exc)}, status_code=422)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Replace FastAPI's 422 handler with :func:`validation_response`."""
    app.add_exception_handler(RequestValidationError, _invalid)
