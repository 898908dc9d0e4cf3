"""Schema-driven fuzzing of the orders OpenAPI with hypothesis, against ``millrace run orders``
as a real process on real PostgreSQL and Kafka: no request may get a 5xx.

Requests are drawn from the served OpenAPI document (operations, path and query parameters,
request bodies), mostly valid by the schema so they reach the domain, and partly mutated
(arbitrary JSON, unknown fields, wrong or missing tokens and keys)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.orders import (
    ACME_TOKEN,
    GLOBEX_TOKEN,
    PLANT_TOKEN,
    TOKENS,
    ensure_manifest_topics,
    fresh_database,
    load_sample_plant,
    make_settings,
)
from support.telemetry import ServiceProcess, free_port


def due_in(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
VALID_ORDERS = st.fixed_dictionaries(
    {
        "customer": st.sampled_from(["acme", "globex"]),
        "lines": st.lists(
            st.fixed_dictionaries(
                {
                    "sku": st.sampled_from(["stem-cnc", "hub-rear", "rack-cargo", "plate-name"]),
                    "quantity": st.integers(1, 50),
                }
            ),
            min_size=1,
            max_size=3,
        ),
        # Within the service's due-date horizon (730 days by default).
        "due_date": st.integers(1, 700).map(due_in),
    }
)
SKUS = ["frame-road", "stem-cnc", "hub-rear", "rack-cargo", "plate-name"]
OPTIONS = ["size", "colour", "length_mm", "engraving", "axle", "text"]
VALUES = ["54", "black", "100", "none", "qr", "team", "red"]


def from_schema(
    schema: dict[str, Any], doc: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    """A strategy of values valid by a JSON Schema subset (what FastAPI emits), biased
    towards the plant's vocabulary so that requests reach the domain checks."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(doc["components"]["schemas"][name], doc, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, doc, depth + 1) for s in schema[key]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        return st.integers(lo, hi) | st.integers(1, 5)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "string":
        if schema.get("format") == "date":
            return st.dates().map(lambda d: d.isoformat())
        if "pattern" in schema:
            regex = st.from_regex(re.compile(schema["pattern"]), fullmatch=True)
            return st.sampled_from(SKUS + OPTIONS + VALUES) | regex.filter(
                lambda s: (
                    len(s) <= schema.get("maxLength", 10_000)
                    and len(s) >= schema.get("minLength", 0)
                )
            )
        return st.sampled_from(VALUES) | st.text(
            min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 30), 30)
        )
    if kind == "array":
        return st.lists(
            from_schema(schema.get("items", {}), doc, depth + 1),
            min_size=schema.get("minItems", 0),
            max_size=min(schema.get("maxItems", 4), 4),
        )
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: from_schema(v, doc, depth + 1) for k, v in props.items() if k in required}
        optional = {
            k: from_schema(v, doc, depth + 1) for k, v in props.items() if k not in required
        }
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            return st.dictionaries(
                st.sampled_from(OPTIONS) | st.text(max_size=8), from_schema(extra, doc), max_size=3
            )
        return st.fixed_dictionaries(fixed, optional=optional)
    return JSON


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if path.startswith("/v1/")
    ]


@st.composite
def requests(draw: st.DrawFn, doc: dict[str, Any]) -> dict[str, Any]:
    """A request drawn from the OpenAPI; ``KNOWN<n>`` in a path stands for the n-th order
    created so far (resolved when sent, so the strategy itself stays deterministic)."""
    method, path, op = draw(st.sampled_from(operations(doc)))
    params: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for p in op.get("parameters", []):
        value = draw(from_schema(p["schema"], doc))
        if p["in"] == "path":
            value = draw(
                st.integers(0, 10_000).map(lambda i: f"KNOWN{i}")
                | st.uuids().map(str)
                | st.just(str(value))
            )
            path = path.replace("{" + p["name"] + "}", httpx.URL(str(value)).raw_path.decode())
        elif p["in"] == "query" and value is not None and draw(st.booleans()):
            params[p["name"]] = value
        elif (
            p["in"] == "header"
            and p["name"].lower() != "authorization"
            and value is not None
            and draw(st.integers(0, 9)) > 0
        ):
            headers[p["name"]] = re.sub(r"[^\x21-\x7e]", "", str(value)) or "k"
    token = draw(st.sampled_from([PLANT_TOKEN, ACME_TOKEN, GLOBEX_TOKEN, PLANT_TOKEN, "wrong", ""]))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body: Any = None
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        body = draw(from_schema(content["schema"], doc))
        mutation = draw(st.integers(0, 9))
        if mutation == 0:
            body = draw(JSON)
        elif mutation == 2 and path == "/v1/orders":
            body = draw(VALID_ORDERS)
            headers["Idempotency-Key"] = draw(st.uuids()).hex
            headers["Authorization"] = f"Bearer {PLANT_TOKEN}"
        elif mutation == 1 and isinstance(body, dict):
            body = body | {draw(st.text(min_size=1, max_size=8)): draw(JSON)}
    return {"method": method, "url": path, "params": params, "headers": headers, "json": body}


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    await ensure_manifest_topics(kafka_bootstrap)
    cfg = make_settings(await fresh_database(database_url), kafka_bootstrap)
    assert cfg.database_url is not None
    env = {
        "MILLRACE_DATABASE_URL": cfg.database_url.get_secret_value(),
        "MILLRACE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "MILLRACE_ORDERS_TOKENS": json.dumps([t.model_dump() for t in TOKENS]),
        "MILLRACE_ORDERS_CONSUMER_GROUP": cfg.orders_consumer_group,
        "MILLRACE_LOG_LEVEL": "WARNING",
    }
    proc = ServiceProcess("orders", env, tmp_path / "orders.log", free_port())
    proc.start()
    try:
        await proc.wait_ready()
        await load_sample_plant(cfg)
        yield proc
    finally:
        proc.terminate()
        log = (tmp_path / "orders.log").read_text()
        assert "Traceback" not in log, log[-3000:]


def test_fuzzed_requests_never_get_a_5xx(service: ServiceProcess) -> None:
    with httpx.Client(base_url=service.url, timeout=30) as client:
        doc = client.get("/openapi.json").json()
        seed = client.post(
            "/v1/orders",
            json={
                "customer": "acme",
                "lines": [{"sku": "stem-cnc", "quantity": 1}],
                "due_date": due_in(30),
            },
            headers={"Authorization": f"Bearer {PLANT_TOKEN}", "Idempotency-Key": "seed"},
        )
        assert seed.status_code == 201, seed.text
        known = [seed.json()["order_id"]]
        statuses: set[int] = set()

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        @given(requests(doc))
        def one(request: dict[str, Any]) -> None:
            url = re.sub(
                r"KNOWN(\d+)", lambda m: known[int(m.group(1)) % len(known)], request["url"]
            )
            response = client.request(**(request | {"url": url}))
            statuses.add(response.status_code)
            assert response.status_code < 500, (request, response.text)
            if response.status_code == 201:
                known.append(response.json()["order_id"])

        one()
    assert {200, 201, 401, 404, 422} <= statuses, statuses
