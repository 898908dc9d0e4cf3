"""The HTTP hardening every API gets from ``shared.http.install_http``: bad input is a 4xx that
serialises, an unhandled error is a counted JSON 500, and a body over the limit is a 413 however
it is sent (chunked bodies through a real uvicorn server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from support.metrics import sample

from millrace.infra.process import free_port
from shared.http import background_server, install_http

LIMIT = 8_192


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: Annotated[str, Field(max_length=20)]
    quantity: StrictInt
    weight: float = 1.0
    tags: dict[str, Any] = {}


def make_app() -> tuple[FastAPI, CollectorRegistry]:
    registry = CollectorRegistry()
    requests = Counter("t_http_requests_total", "", ["route", "status"], registry=registry)
    latency = Histogram("t_http_seconds", "", ["route"], registry=registry)
    app = FastAPI()

    @app.post("/items")
    async def post_item(item: Item) -> dict[str, str]:
        return {"name": item.name}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    install_http(app, max_body_bytes=LIMIT, requests=requests, latency=latency)
    return app, registry


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, CollectorRegistry]]:
    app, registry = make_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c, registry


def count(registry: CollectorRegistry, route: str, status: int) -> float:
    return sample("t_http_requests_total", registry, route=route, status=str(status))


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a", "quantity": NaN}',
        b'{"name": "a", "quantity": 1, "weight": NaN}',
        b'{"name": "a", "quantity": 1, "weight": Infinity}',
        b'{"name": "a", "quantity": 1, "weight": -Infinity}',
        b'{"name": "a", "quantity": 1, "weight": 1e400}',
        b'{"name": "a", "quantity": 1e400}',
        b'{"name": "a", "quantity": 1, "tags": {"x": NaN}, "extra": NaN}',
        b'{"name": NaN, "quantity": Infinity, "weight": -Infinity}',
        b'{"name": "a", "quantity": 1, "nope": [NaN, Infinity]}',
        b'{"name": "' + b"x" * 30 + b'", "quantity": 1}',
        b"[1, 2, NaN]",
        b"NaN",
        b"null",
        b'"text"',
    ],
)
async def test_a_body_that_does_not_validate_is_a_422_that_serialises(
    client: tuple[httpx.AsyncClient, CollectorRegistry], body: bytes
) -> None:
    c, registry = client
    resp = await c.post("/items", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    issues = orjson.loads(resp.content)["detail"]
    assert issues
    assert all(set(i) == {"loc", "msg", "type"} and i["loc"][0] == "body" for i in issues)
    assert count(registry, "/items", 422) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"name": "\xff\xfe", "quantity": 1}',
        b"[" * 1_500 + b"]" * 1_500,
        b'{"name": "a", "quantity": ' + b"9" * 4_301 + b"}",
        b'{"name": "a",',
        b"",
    ],
    ids=["text", "invalid-utf8", "deeply-nested", "4301-digits", "truncated", "empty"],
)
async def test_a_body_that_is_not_json_is_a_400_or_a_422_for_none(
    client: tuple[httpx.AsyncClient, CollectorRegistry], body: bytes
) -> None:
    c, registry = client
    resp = await c.post("/items", content=body, headers={"content-type": "application/json"})
    # an empty body is a missing one: the 422 says the body is required
    expected = 422 if body == b"" else 400
    assert resp.status_code == expected, resp.text
    assert resp.json()["detail"]
    assert count(registry, "/items", expected) == 1


async def test_an_unhandled_error_is_a_json_500_that_is_counted(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    resp = await c.get("/boom")
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error"}
    assert count(registry, "/boom", 500) == 1
    resp = await c.get("/nowhere")
    assert resp.status_code == 404
    assert count(registry, "unmatched", 404) == 1


async def test_body_over_the_limit_by_content_length_is_413(
    client: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    c, registry = client
    big = orjson.dumps({"name": "a", "quantity": 1, "tags": {"x": "y" * LIMIT}})
    resp = await c.post("/items", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json() == {"detail": f"request body exceeds {LIMIT} bytes"}
    assert count(registry, "unmatched", 413) == 1


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """``app`` on a real uvicorn server on a free port."""
    port = free_port()
    server = background_server(app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task


async def raw_chunked(port: int, chunks: list[bytes]) -> tuple[int, bytes]:
    """POST ``chunks`` with ``Transfer-Encoding: chunked``; the status and body answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        with contextlib.suppress(ConnectionError):
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, body


async def test_chunked_body_over_the_limit_is_413_over_real_http() -> None:
    app, registry = make_app()
    async with served(app) as port:
        padding = b" " * 1_000
        chunks = [b'{"name": "a", "quantity": 1, "tags": {}', *([padding] * 10), b"}"]
        status, body = await raw_chunked(port, chunks)
        assert status == 413, body
        assert orjson.loads(body) == {"detail": f"request body exceeds {LIMIT} bytes"}
        assert count(registry, "/items", 413) == 1
        # the same body under the limit goes through, chunked too
        status, body = await raw_chunked(port, [chunks[0], padding, b"}"])
        assert (status, orjson.loads(body)) == (200, {"name": "a"})
        # and so do bad numbers, chunked
        status, body = await raw_chunked(port, [b'{"name": "a", ', b'"quantity": NaN}'])
        assert status == 422, body
