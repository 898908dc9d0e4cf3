"""The request body limit every API shares: 413 for a body over ``max_bytes``, however it is
sent (by its ``Content-Length`` at once, chunked as soon as the chunks add up past it).

Before the 413 goes out, what is left of the refused body is read and dropped, up to
``DRAIN_MAX_BYTES`` and for at most ``DRAIN_TIMEOUT_S``: a server that closes a connection with
unread input makes the kernel reset it, and the client may then lose the 413 that was already on
its way and see only a broken pipe. A body larger than the drain bound is answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_MAX_BYTES = 1 << 20
DRAIN_TIMEOUT_S = 2.0


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a body grows past the limit. An HTTPException, so that
    FastAPI's body parsing passes it on as it is (any other error there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            if int(declared) <= DRAIN_MAX_BYTES:
                await drain(receive)
            await send_json(send, 413, BodyTooLargeError(self.max_bytes).detail)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Drained here, before the app turns the error into its 413 (FastAPI answers
                    # an HTTPException itself, so the except below only sees it outside FastAPI).
                    if message.get("more_body", False):
                        await drain(receive)
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
            await send_json(send, 413, exc.detail)


async def drain(receive: Receive) -> None:
    """Read and drop the rest of a request body, within the drain bounds."""
    left = DRAIN_MAX_BYTES
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            while left > 0:
                message = await receive()
                if message["type"] != "http.request":
                    return
                left -= len(message.get("body", b""))
                if not message.get("more_body", False):
                    return


async def send_json(send: Send, status: int, detail: str) -> None:
    """A complete JSON ``{"detail": ...}`` response, sent through the raw ASGI ``send``."""
    body = JSONResponse({"detail": detail}).body
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
