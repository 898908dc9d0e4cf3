"""HTTP plumbing every service shares: ``/healthz``, ``/readyz``, ``/metrics``, ``/asyncapi``,
a request body size limit, and a uvicorn runner that shuts down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[bool]]
ASYNCAPI_PATH = Path(__file__).resolve().parent.parent / "contracts" / "asyncapi.yaml"


def ops_router(checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 3.0) -> APIRouter:
    """Liveness (the process answers), readiness (every dependency answers) and metrics."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        async def one(check: ReadinessCheck) -> bool:
            try:
                async with asyncio.timeout(timeout_s):
                    return await check()
            except Exception:  # noqa: BLE001 - a failing check means "not ready"
                return False

        names = list(checks)
        results = await asyncio.gather(*(one(checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        ok = all(results)
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": status},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi")
    async def asyncapi() -> Response:
        if not ASYNCAPI_PATH.exists():
            return PlainTextResponse("AsyncAPI document not generated", status_code=404)
        return Response(ASYNCAPI_PATH.read_bytes(), media_type="application/yaml")

    return router


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413, before they are buffered whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        rejected = False

        async def limited() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    raise _TooLargeError
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLargeError:
            if rejected:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = b'{"detail":"request body exceeds %d bytes"}' % self.max_bytes
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLargeError(Exception):
    pass


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)


def serve(app: FastAPI, host: str, port: int, grace_s: float) -> None:
    """Run ``app`` under uvicorn until SIGINT/SIGTERM; the lifespan's shutdown then drains
    in-flight requests (up to ``grace_s``), flushes producers and commits offsets."""
    import uvicorn  # noqa: PLC0415 - only entrypoints need the server

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(grace_s),
        server_header=False,
    )
    uvicorn.Server(config).run()
