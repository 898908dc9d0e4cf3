"""HTTP plumbing every service shares: ``/healthz``, ``/readyz``, ``/metrics``, ``/asyncapi``
(on the API's port, or on an internal ops port), a request body size limit, responses counted
by route and status, and a uvicorn runner that shuts down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http_errors import install_error_handlers
from shared.logging import get_logger

ReadinessCheck = Callable[[], Awaitable[bool]]
ASYNCAPI_PATH = Path(__file__).resolve().parent.parent / "contracts" / "asyncapi.yaml"
log = get_logger(__name__)


def health_router(checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 3.0) -> APIRouter:
    """Liveness (the process answers) and readiness (every check passes; 503 names the rest)."""
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

    return router


def ops_router(checks: Mapping[str, ReadinessCheck], *, timeout_s: float = 3.0) -> APIRouter:
    """Health, readiness, Prometheus metrics and the AsyncAPI document."""
    router = health_router(checks, timeout_s=timeout_s)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi")
    async def asyncapi() -> Response:
        if not ASYNCAPI_PATH.exists():
            return PlainTextResponse("AsyncAPI document not generated", status_code=404)
        return Response(ASYNCAPI_PATH.read_bytes(), media_type="application/yaml")

    return router


def docs_urls(ops_port: int | None) -> dict[str, Any]:
    """``FastAPI(**docs_urls(...))``: with an ops port the API's own port serves no docs."""
    if ops_port is None:
        return {}
    return {"openapi_url": None, "docs_url": None, "redoc_url": None}


def mount_ops(app: FastAPI, checks: Mapping[str, ReadinessCheck], ops_port: int | None) -> None:
    """Serve the ops endpoints beside the API, or, with ``ops_port``, on an app of their own
    (``app.state.ops_app``, run by :func:`serve`) that also serves the API's OpenAPI and docs;
    the API's port then keeps only ``/healthz`` and ``/readyz``."""
    if ops_port is None:
        app.include_router(ops_router(checks))
        return
    app.include_router(health_router(checks))
    ops = FastAPI(title=f"{app.title} (ops)", **docs_urls(ops_port))
    ops.include_router(ops_router(checks))

    @ops.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @ops.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    app.state.ops_app = ops


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a body grows past the limit. An HTTPException, so that
    FastAPI's body parsing passes it on as it is (any other error there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class BodyLimitMiddleware:
    """Reject request bodies over ``max_bytes`` with 413, before they are buffered whole:
    at once by ``Content-Length``, else (chunked) as soon as the chunks add up past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, BodyTooLargeError(self.max_bytes).detail)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLargeError as exc:
            if started:
                raise
            await _send_json(send, 413, exc.detail)


class CountRequests:
    """Count every response by route template and status and time it, including the 500 of an
    unhandled exception: that one is answered here (JSON, logged with its stack), since
    Starlette's own answer comes from outside every middleware, where nothing counts it."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        started = False

        async def counted(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                route = getattr(scope.get("route"), "path", "unmatched")
                self.requests.labels(route, str(message["status"])).inc()
                self.latency.labels(route).observe(time.perf_counter() - began)
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            route = getattr(scope.get("route"), "path", "unmatched")
            log.exception("unhandled error", method=scope.get("method"), route=route)
            if started:
                raise  # the response is under way: the server can only drop the connection
            await _send_json(counted, 500, "internal error")


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}).body
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)


def install_http(
    app: FastAPI, *, max_body_bytes: int, requests: Counter, latency: Histogram
) -> None:
    """What every API gets, called once its routes are in: JSON-safe 400/422 answers, the body
    limit, and ``requests``/``latency`` (labels ``route, status`` and ``route``) outermost."""
    install_error_handlers(app)
    install_body_limit(app, max_body_bytes)
    app.add_middleware(CountRequests, requests=requests, latency=latency)


def background_server(app: ASGIApp, host: str, port: int) -> Any:
    """A uvicorn server (``uvicorn.Server``) without signal handlers and lifespan: a second
    listener in a process whose main server handles the signals, and stops this one."""
    import uvicorn  # noqa: PLC0415 - only entrypoints need the server

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    return Server(config)


def serve(app: FastAPI, host: str, port: int, grace_s: float, ops_port: int | None = None) -> None:
    """Run ``app`` under uvicorn until SIGINT/SIGTERM; the lifespan's shutdown then drains
    in-flight requests (up to ``grace_s``), flushes producers and commits offsets. With
    ``ops_port``, the ops app of :func:`mount_ops` listens there too, until the API stops."""
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
    server = uvicorn.Server(config)
    ops_app = getattr(app.state, "ops_app", None)
    if ops_port is None or ops_app is None:
        server.run()
        return

    async def both() -> None:
        ops = background_server(ops_app, host, ops_port)
        ops_task = asyncio.create_task(ops.serve())

        async def follow() -> None:
            # The API's server holds the signal handlers, and re-raises the signal once it has
            # stopped, which ends the process: the ops listener stops when the API's starts to.
            while not server.should_exit:  # noqa: ASYNC110 - a plain attribute in uvicorn
                await asyncio.sleep(0.1)
            ops.should_exit = True

        follower = asyncio.create_task(follow())
        try:
            await server.serve()
        finally:
            ops.should_exit = True
            await asyncio.gather(ops_task, follower)

    asyncio.run(both())
