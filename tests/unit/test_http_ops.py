"""Ops endpoints on the API's port or on an internal one (``MILLRACE_OPS_PORT``), the two
listeners of ``shared.http.serve`` on real sockets, and error logs that carry the stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from millrace.infra.process import free_port
from services.telemetry.app import create_app
from services.telemetry.settings import TelemetrySettings
from shared.http import mount_ops
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
OPS_ONLY = ["/metrics", "/openapi.json", "/docs", "/asyncapi"]


async def ready() -> bool:
    return True


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_without_an_ops_port_the_api_port_serves_everything() -> None:
    app = create_app(TelemetrySettings(), aggregator=False)
    assert getattr(app.state, "ops_app", None) is None
    for path in ["/healthz", "/metrics", "/openapi.json", "/docs"]:
        assert (await get(app, path)).status_code == 200, path


async def test_with_an_ops_port_docs_and_metrics_leave_the_api_port() -> None:
    app = create_app(TelemetrySettings(ops_port=9090), aggregator=False)
    ops = app.state.ops_app
    for path in OPS_ONLY:
        assert (await get(app, path)).status_code == 404, path
        assert (await get(ops, path)).status_code == 200, path
    for server in (app, ops):
        assert (await get(server, "/healthz")).status_code == 200
        # Served on both (no Kafka here, so it answers 503 naming the check, never 404).
        ready = await get(server, "/readyz")
        assert ready.status_code in (200, 503)
        assert "kafka" in ready.json()["checks"]
    assert (await get(ops, "/openapi.json")).json() == app.openapi()
    assert "/v1/readings" in app.openapi()["paths"]
    assert "millrace_telemetry_http_requests_total" in (await get(ops, "/metrics")).text


def test_the_ops_port_must_differ_from_the_api_port() -> None:
    with pytest.raises(ValueError, match="MILLRACE_OPS_PORT"):
        ServiceSettings(http_port=8080, ops_port=8080)


SERVER = """
    import sys
    from fastapi import FastAPI
    from shared.http import docs_urls, mount_ops, serve
    from shared.logging import configure_logging

    configure_logging("t")
    api, ops = int(sys.argv[1]), int(sys.argv[2])
    app = FastAPI(**docs_urls(ops))

    @app.get("/v1/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def ready() -> bool:
        return True

    mount_ops(app, {"ready": ready}, ops)
    serve(app, "127.0.0.1", api, 5.0, ops_port=ops)
"""


def wait_answering(url: str, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_serve_runs_both_listeners_and_sigterm_stops_both() -> None:
    api, ops = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SERVER), str(api), str(ops)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_answering(f"http://127.0.0.1:{api}/healthz")
        wait_answering(f"http://127.0.0.1:{ops}/healthz")
        assert httpx.get(f"http://127.0.0.1:{api}/v1/hello").json() == {"hello": "world"}
        assert httpx.get(f"http://127.0.0.1:{api}/metrics").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{api}/openapi.json").status_code == 404
        assert httpx.get(f"http://127.0.0.1:{api}/readyz").json()["status"] == "ready"
        spec = httpx.get(f"http://127.0.0.1:{ops}/openapi.json").json()
        assert list(spec["paths"]) == ["/v1/hello"]
        assert httpx.get(f"http://127.0.0.1:{ops}/metrics").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ops}/v1/hello").status_code == 404
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert proc.wait(15) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        assert b"Finished server process" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for port in (api, ops):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)


LOGGER = """
    import logging
    from shared.logging import configure_logging, get_logger

    configure_logging("t")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        get_logger("t").exception("unhandled error", route="/x")
"""


def test_error_logs_carry_the_formatted_stack_from_both_logging_apis() -> None:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOGGER)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in records] == ["Exception in ASGI application", "unhandled error"]
    for record in records:
        assert record["level"] == "error"
        assert record["exception"].startswith("Traceback (most recent call last):")
        assert record["exception"].rstrip().endswith("ZeroDivisionError: division by zero")
        assert "exc_info" not in record
    assert "traceback object" not in out


async def test_mount_ops_without_a_port_serves_all_on_the_app() -> None:
    app = FastAPI()
    mount_ops(app, {"ready": ready}, None)
    assert getattr(app.state, "ops_app", None) is None
    for path in ["/healthz", "/readyz", *OPS_ONLY]:
        assert (await get(app, path)).status_code == 200, path
