"""Every HTTP API is its OpenAPI: schemathesis drives each service's real app on a real uvicorn
server (real Kafka and PostgreSQL behind it) and checks status codes, headers and response
schemas against the document, that no request gets a 5xx, and that auth is not ignored.

A service joins with one line in ``APIS``: a function that yields the running API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.core.result import Ok
from support import scheduling as scheduling_support
from support.orders import (
    PLANT,
    PLANT_TOKEN,
    bearer,
    ensure_manifest_topics,
    fresh_database,
    make_settings,
)

from millrace.infra.process import free_port
from millrace.masterdata.plant import load_plant
from millrace.masterdata.publish import publish_plant
from services.orders.app import create_app as orders_app
from services.scheduling.app import create_app as scheduling_app
from services.telemetry.app import create_app as telemetry_app
from services.telemetry.settings import TelemetrySettings

TELEMETRY_TOKEN = "telemetry-conformance-token"
# schemathesis' negative strategies draw from `random` inside a strategy (its code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")


@dataclass
class Api:
    """A running API: where it listens, the headers of an authorised caller, its OpenAPI."""

    name: str
    base_url: str
    token: str
    openapi: dict[str, Any] = field(repr=False)
    max_body_bytes: int = 65_536
    # bodies that look valid but carry a number JSON cannot hold or the service cannot keep
    hostile: list[bytes] = field(default_factory=list)


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` with its lifespan on a uvicorn server in a thread of its own (schemathesis calls
    it synchronously), on a free port; its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{app.title} did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def telemetry(kafka: str, database_url: str) -> Iterator[Api]:
    settings = TelemetrySettings(
        kafka_bootstrap=kafka,
        telemetry_ingest_token_sha256=[hashlib.sha256(TELEMETRY_TOKEN.encode()).hexdigest()],
    )
    app = telemetry_app(settings, aggregator=False)
    reading = b'{"device_id": "d", "readings": [{"metric": "m", "ts": 1, "value": %s}]}'
    with served(app) as url:
        yield Api(
            "telemetry",
            url,
            TELEMETRY_TOKEN,
            app.openapi(),
            settings.telemetry_ingest_max_body_bytes,
            [reading % b"18446744073709551616", reading % (b"1" + b"0" * 400), reading % b"NaN"],
        )


@contextlib.contextmanager
def orders(kafka: str, database_url: str) -> Iterator[Api]:
    settings = make_settings(asyncio.run(fresh_database(database_url)), kafka)
    app = orders_app(settings)
    with served(app) as url:
        # products and customers, so that valid orders can be placed once the views have them;
        # not waited for: until then a valid order is a 422 (unknown sku), also conformant
        asyncio.run(publish_plant(settings, load_plant(PLANT)))
        line = b'{"sku": "frame-road", "quantity": %s, "options": {"size": "54"}}'
        order = b'{"customer": "acme", "lines": [%s], "due_date": "2030-01-31"}'
        yield Api(
            "orders",
            url,
            PLANT_TOKEN,
            app.openapi(),
            settings.orders_max_body_bytes,
            [order % (line % b"NaN"), order % (line % b"1e400"), b'{"reason": Infinity}'],
        )


@contextlib.contextmanager
def scheduling(kafka: str, database_url: str) -> Iterator[Api]:
    db = asyncio.run(scheduling_support.fresh_database(database_url))
    settings = scheduling_support.make_settings(db, kafka)
    # its consumer starts at the end of the event topics: other tests' orders are not its own
    asyncio.run(scheduling_support.prepare(settings))
    app = scheduling_app(settings)
    with served(app) as url:
        yield Api(
            "scheduling",
            url,
            scheduling_support.PLANT_TOKEN,
            app.openapi(),
            settings.scheduling_max_body_bytes,
        )


# service name -> a context manager (Kafka bootstrap, database URL) -> the running API.
APIS: dict[str, Callable[[str, str], contextlib.AbstractContextManager[Api]]] = {
    "telemetry": telemetry,
    "orders": orders,
    "scheduling": scheduling,
}


# Business rules the schema cannot express answer 422 to data the schema allows: a reading
# stamped further ahead than the allowed skew, an unknown sku or customer, a due date in the
# past. A 422 is therefore an acceptable answer to valid data; everything else is checked as
# schemathesis does by default (so a 422 for a cursor the schema allows shows up in
# test_every_cursor_the_schema_allows_is_accepted instead).
def config(token: str) -> schemathesis.Config:
    """Our bearer token on every request but those that test its absence."""
    return schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": token}}},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
                },
                # invalid data may also be too large (413, documented) before it is looked at
                "negative_data_rejection": {
                    "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
                },
            },
        }
    )


@pytest.fixture(scope="module", params=list(APIS))
def api(request: pytest.FixtureRequest, kafka_bootstrap: str, database_url: str) -> Iterator[Api]:
    asyncio.run(ensure_manifest_topics(kafka_bootstrap))
    with APIS[request.param](kafka_bootstrap, database_url) as running:
        yield running


EXAMPLES = 30  # per operation and mode


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_is_its_openapi(api: Api, mode: GenerationMode) -> None:
    """Valid requests (``positive``) and requests that break the schema (``negative``): every
    answer documented, with its schema and headers, no 5xx, invalid data refused."""
    schema = schemathesis.openapi.from_dict(api.openapi, config=config(api.token))
    failures = []
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document is valid OpenAPI
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(base_url=api.base_url)
            seen.setdefault(case.operation.label, set()).add(response.status_code)

        try:
            conforms()
        except Exception as exc:  # noqa: BLE001 - collected, so that one report names them all
            failures.append(f"{operation.label}: {exc}")
        if mode == GenerationMode.POSITIVE:  # our token was sent: not everything is a 401
            assert seen[operation.label] - {401}, (operation.label, seen[operation.label])
    assert not failures, "\n\n".join(failures)


def concrete(path: str) -> str:
    """``path`` with a valid, unknown id in each of its parameters."""
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_every_operation_needs_a_bearer_token(api: Api) -> None:
    """Without a token (and with a wrong one) every operation is a 401, documented."""
    for path, methods in api.openapi["paths"].items():
        for method, operation in methods.items():
            assert "401" in operation["responses"], (method, path)
            assert operation["security"] == [{"HTTPBearer": []}]
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = httpx.request(method, api.base_url + concrete(path), headers=headers, json={})
                assert r.status_code == 401, (method, path, r.text)
                assert r.headers["www-authenticate"] == "Bearer"


NOT_JSON = [
    b"not json",
    b'{"a": "\xff"}',
    b"[" * 5_000 + b"]" * 5_000,
    b"9" * 4_301,
    b'{"a": 1',
]
NOT_VALID = [b"NaN", b"Infinity", b"-Infinity", b"[1e400]", b'{"a": NaN, "b": [Infinity]}']


def body_operations(api: Api) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation that takes a JSON body."""
    return [
        (method, concrete(path))
        for path, methods in api.openapi["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    ]


def test_hostile_bodies_get_a_4xx_that_says_why(api: Api) -> None:
    """Not JSON: 400. JSON that cannot be valid (NaN, ±Infinity, 1e400, integers beyond 64
    bits): 422. Either way a JSON answer with the reason, never a 5xx."""
    headers = bearer(api.token) | {"content-type": "application/json", "Idempotency-Key": "h-1"}
    for method, path in body_operations(api):
        for body in NOT_JSON + NOT_VALID + api.hostile:
            r = httpx.request(method, api.base_url + path, headers=headers, content=body)
            expected = 400 if body in NOT_JSON else 422
            # a body may be refused before the path's order is looked up, never after it
            assert r.status_code == expected, (method, path, body[:80], r.text)
            assert r.json()["detail"], (method, path, body[:80])


async def chunked_post(url: str, path: str, headers: dict[str, str], chunks: int) -> int:
    """The status of a POST whose body is sent with ``Transfer-Encoding: chunked``."""
    host, _, port = url.removeprefix("http://").partition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
    )
    # read while sending: the 413 comes before the body ends, and the server then hangs up
    status_line = asyncio.create_task(reader.readline())
    chunk = b"[" + b" " * 16_382 + b"]"
    with contextlib.suppress(ConnectionError):
        for _ in range(chunks):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    line = await asyncio.wait_for(status_line, 30)
    writer.close()
    return int(line.split()[1])


def test_an_oversized_chunked_body_is_413(api: Api) -> None:
    chunks = api.max_body_bytes // 16_384 + 2
    headers = bearer(api.token) | {"Idempotency-Key": "c-1"}
    for method, path in body_operations(api):
        assert method == "post"
        status = asyncio.run(chunked_post(api.base_url, path, headers, chunks))
        assert status == 413, path
        assert asyncio.run(chunked_post(api.base_url, path, headers, 1)) == 422, path


def test_an_oversized_body_is_413_wherever_posted(api: Api) -> None:
    """By its Content-Length, before any of it is read: also where no body is expected."""
    headers = bearer(api.token) | {"content-type": "application/json", "Idempotency-Key": "b-1"}
    body = b"[" + b" " * api.max_body_bytes + b"]"
    for path, methods in api.openapi["paths"].items():
        if "post" in methods:
            r = httpx.post(api.base_url + concrete(path), headers=headers, content=body)
            assert r.status_code == 413, (path, r.text)
            assert "413" in methods["post"]["responses"], f"{path}: its 413 is not documented"


def test_every_answer_was_counted_and_none_was_a_5xx(api: Api) -> None:
    """Runs after the tests above on the same server: they all show in the request counter."""
    text = httpx.get(api.base_url + "/metrics").text
    name = f"millrace_{api.name}_http_requests_total"
    assert metric(text, name, status="413") >= 1
    if body_operations(api):  # the hostile bodies' 400s
        assert metric(text, name, status="400") >= 1
    assert metric(text, name, status="422") >= 1
    # /readyz answers 503 by design while not ready (the metrics are the process's: other tests
    # of the session make services not ready on purpose); every other 5xx is a failure
    fives = [
        line
        for line in text.splitlines()
        if line.startswith(name) and 'status="5' in line and 'route="/readyz"' not in line
    ]
    assert [f for f in fives if not f.endswith(" 0.0")] == []


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        sample_labels, _, value = line[len(name) + 1 :].rpartition("} ")
        if all(f'{k}="{v}"' in sample_labels for k, v in labels.items()):
            total += float(value)
    return total
