"""``POST /v1/readings``: validate one device's batch and publish it to ``telemetry.readings.v1``.

A 202 means the batch is on Kafka (acks=all). Bad input gets a 4xx with the reason; a Kafka
outage gets a 503 with ``Retry-After`` so the sender retries: nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from contracts.envelope import new_event
from contracts.telemetry import FiniteNumber, Reading, ReadingsBatch
from services.telemetry import metrics as m
from services.telemetry.settings import TelemetrySettings
from shared.http_errors import error_responses, validation_response
from shared.logging import get_logger

READINGS_TOPIC = "telemetry.readings.v1"
log = get_logger(__name__)


def _fits_64_bits(value: object) -> object:
    """Consumers (and orjson, which encodes the record) take integers of at most 64 bits.
    Checked before the finite-number check, which raises OverflowError (not a validation
    error) for an integer beyond float range."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        raise ValueError("an integer value must fit in 64 bits (signed)")
    return value


class ReadingIn(Reading):
    """A reading as HTTP accepts it: unknown fields are an error, not ignored, and an integer
    value must fit in 64 bits."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    value: Annotated[
        FiniteNumber,
        BeforeValidator(_fits_64_bits),
        Field(description="A finite number (no NaN, no ±Infinity); integers in signed 64 bits."),
    ]


class ReadingsBatchIn(ReadingsBatch):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    readings: Annotated[list[ReadingIn], Field(min_length=1, max_length=10_000)]  # type: ignore[assignment]


class Accepted(BaseModel):
    event_id: str
    device_id: str
    readings: int


# Documents the scheme in the OpenAPI; the 401 is ours (HTTPBearer's own would be a 403).
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def _authorizer(settings: TelemetrySettings) -> Callable[..., Awaitable[None]]:
    digests = [bytes.fromhex(d) for d in settings.telemetry_ingest_token_sha256]

    async def authorize(credentials: Bearer = None) -> None:
        if not digests:
            return  # dev without configured tokens (settings refuse this in prod)
        if credentials is None or not credentials.credentials:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        given = hashlib.sha256(credentials.credentials.encode()).digest()
        if not any(hmac.compare_digest(given, d) for d in digests):
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})

    return authorize


def install_ingest_counting(app: FastAPI) -> None:
    """The shared 400/422 answer, counted in the ingest's own metric too."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        response = validation_response(exc)
        if request.url.path == "/v1/readings":
            m.INGEST_REQUESTS.labels(str(response.status_code)).inc()
        return response


def ingest_router(settings: TelemetrySettings, broker: KafkaBroker) -> APIRouter:
    router = APIRouter(tags=["telemetry"])
    skew = settings.telemetry_max_future_skew_ms

    @router.post(
        "/v1/readings",
        status_code=202,
        dependencies=[Depends(_authorizer(settings))],
        responses=error_responses(
            400,
            401,
            413,
            422,
            503,
            e422="invalid batch; the body says why",
            e503="Kafka unavailable; retry after Retry-After seconds",
        ),
    )
    async def post_readings(batch: ReadingsBatchIn, request: Request) -> Accepted:
        """Accept one device's batch of readings (a batch of one is normal)."""
        now_ms = time.time_ns() // 1_000_000
        for i, r in enumerate(batch.readings):
            if r.ts > now_ms + skew:
                m.INGEST_REQUESTS.labels("422").inc()
                raise HTTPException(
                    422,
                    f"readings.{i}.ts: {r.ts} is {r.ts - now_ms} ms ahead of the server clock "
                    f"(max skew {skew} ms)",
                )
        event = new_event(
            topic=READINGS_TOPIC,
            service=settings.service_name,
            subject=batch.device_id,
            traceparent=request.headers.get("traceparent"),
        )
        body = orjson.dumps(batch.model_dump(mode="json"))
        headers = {k: v.decode() for k, v in event.headers()}
        try:
            await broker.publish(
                body, READINGS_TOPIC, key=batch.device_id.encode(), headers=headers
            )
        except Exception as exc:
            m.INGEST_REQUESTS.labels("503").inc()
            log.warning("ingest publish failed", error=repr(exc), device_id=batch.device_id)
            raise HTTPException(503, "Kafka unavailable; retry", {"Retry-After": "1"}) from exc
        m.INGEST_REQUESTS.labels("202").inc()
        m.INGEST_READINGS.inc(len(batch.readings))
        return Accepted(event_id=event.id, device_id=batch.device_id, readings=len(batch.readings))

    return router
