"""Orders settings fail closed, tokens are matched by digest, and the README documents every
orders setting."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from services.orders.auth import Caller, authenticator
from services.orders.settings import OrdersSettings, TokenSpec

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
DB = "postgresql://u@127.0.0.1/db"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_prod_requires_tokens() -> None:
    with pytest.raises(ValidationError, match="MILLRACE_ORDERS_TOKENS"):
        OrdersSettings(
            env="prod",
            database_url=DB,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        )


def test_database_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MILLRACE_DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="MILLRACE_DATABASE_URL"):
        OrdersSettings()


@pytest.mark.parametrize(
    "spec",
    [
        {"sha256": "abc", "role": "plant"},
        {"sha256": digest("x"), "role": "customer"},
        {"sha256": digest("x"), "role": "plant", "customer": "acme"},
        {"sha256": digest("x"), "role": "plant", "extra": 1},
    ],
)
def test_bad_token_specs_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TokenSpec.model_validate(spec)


def test_duplicate_digests_are_refused() -> None:
    spec = TokenSpec(sha256=digest("x"), role="plant")
    with pytest.raises(ValidationError, match="twice"):
        OrdersSettings(database_url=DB, orders_tokens=[spec, spec])


async def test_tokens_resolve_to_principals_and_fail_closed() -> None:
    settings = OrdersSettings(
        database_url=DB,
        orders_tokens=[
            TokenSpec(sha256=digest("p"), role="plant", name="ops"),
            TokenSpec(sha256=digest("c"), role="customer", customer="acme"),
        ],
    )
    authenticate = authenticator(settings)

    async def auth(header: str | None) -> Caller:
        # what FastAPI's HTTPBearer(auto_error=False) hands over for an Authorization header
        headers = [] if header is None else [(b"authorization", header.encode())]
        request = Request({"type": "http", "headers": headers})
        return await authenticate(await HTTPBearer(auto_error=False)(request))

    plant = await auth("Bearer p")
    assert (plant.principal, plant.customer) == ("plant:ops", None)
    acme = await auth("bearer c")
    assert (acme.principal, acme.customer) == ("customer:acme", "acme")
    assert acme.may_see("acme")
    assert not acme.may_see("globex")
    for header in (None, "", "Bearer ", "Basic c", "Bearer nope", "Bearer  "):
        with pytest.raises(HTTPException) as err:
            await auth(header)
        assert err.value.status_code == 401
    closed = authenticator(OrdersSettings(database_url=DB))
    with pytest.raises(HTTPException):
        await closed(HTTPAuthorizationCredentials(scheme="Bearer", credentials="p"))


@pytest.mark.parametrize("field", sorted(f for f in OrdersSettings.model_fields if "orders" in f))
def test_every_orders_setting_is_documented(field: str) -> None:
    assert f"MILLRACE_{field.upper()}" in README
