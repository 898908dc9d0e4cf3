"""Orders intake beyond the catalogue: known customers, the due-date horizon, and idempotent
replays compared by the resolved request."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest

from contracts.masterdata import Customer, Product
from millrace.masterdata.plant import load_plant
from services.orders.domain.intake import IntakeError, RequestedLine, resolve_request
from services.orders.domain.request import VERSION, RequestDigest, request_digest

PLANT = Path(__file__).resolve().parents[2] / "deploy" / "local" / "plant.yaml"
TODAY = date(2029, 1, 1)
ACME = Customer(customer_id="acme", name="Acme", country="DE")


def catalogue() -> dict[str, Product]:
    return {p.sku: p for p in load_plant(PLANT).products}


def resolve(
    customer: Customer | None = ACME, due: date = TODAY + timedelta(days=30), horizon: int = 730
) -> None:
    resolve_request(
        customer_id="acme",
        customer=customer,
        requested=[RequestedLine("stem-cnc", 1, {})],
        products=catalogue(),
        due_date=due,
        today=TODAY,
        max_due_days=horizon,
    )


def test_the_sample_plant_holds_the_simulators_customers() -> None:
    customers = {c.customer_id: c for c in load_plant(PLANT).customers}
    assert set(customers) == {"acme", "globex", "initech"}
    assert all(len(c.country) == 2 for c in customers.values())


def test_a_known_customer_within_the_horizon_is_accepted() -> None:
    resolve()
    resolve(due=TODAY)
    resolve(due=TODAY + timedelta(days=730))


@pytest.mark.parametrize(
    ("customer", "due", "reason"),
    [
        (None, TODAY + timedelta(days=30), "customer: unknown customer 'acme'"),
        (ACME, date(9999, 12, 31), "9999-12-31 is beyond the 730-day horizon (latest 2031-01-01)"),
        (ACME, TODAY + timedelta(days=731), "beyond the 730-day horizon"),
        (ACME, TODAY - timedelta(days=1), "2028-12-31 is in the past"),
    ],
)
def test_refusals_give_the_reason(customer: Customer | None, due: date, reason: str) -> None:
    with pytest.raises(IntakeError) as err:
        resolve(customer, due)
    assert any(reason in p for p in err.value.problems), err.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(IntakeError) as err:
        resolve_request(
            customer_id="nobody",
            customer=None,
            requested=[RequestedLine("nope", 1, {})],
            products=catalogue(),
            due_date=date(9999, 12, 31),
            today=TODAY,
            max_due_days=730,
        )
    assert len(err.value.problems) == 3
    assert len([p for p in err.value.problems if p.startswith("due_date")]) == 1


def digest(lines: list[RequestedLine], customer: str = "acme", priority: str = "high") -> str:
    return request_digest(
        customer=customer,
        requested=lines,
        products=catalogue(),
        due_date=date(2030, 1, 1),
        priority=priority,
        raw_body={},
    ).resolved


def test_spelling_out_a_default_option_is_the_same_request() -> None:
    left_out = digest([RequestedLine("frame-road", 2, {"size": "54"})])
    spelled = digest([RequestedLine("frame-road", 2, {"colour": "black", "size": "54"})])
    assert left_out == spelled
    assert left_out.startswith(VERSION)


@pytest.mark.parametrize(
    "other",
    [
        {"lines": [RequestedLine("frame-road", 2, {"size": "54", "colour": "red"})]},
        {"lines": [RequestedLine("frame-road", 3, {"size": "54"})]},
        {"lines": [RequestedLine("frame-road", 2, {"size": "56"})]},
        {"customer": "globex"},
        {"priority": "low"},
    ],
)
def test_a_different_request_has_another_digest(other: dict[str, object]) -> None:
    base: dict[str, object] = {"lines": [RequestedLine("frame-road", 2, {"size": "54"})]}
    assert digest(**base) != digest(**(base | other))  # type: ignore[arg-type]


def test_a_digest_stored_by_an_earlier_release_is_compared_with_the_raw_body() -> None:
    body = {"lines": [{"sku": "stem-cnc", "quantity": 1, "options": {}}], "due_date": "2030-01-01"}
    old = hashlib.sha256(
        orjson.dumps(body | {"customer": "acme"}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    now = request_digest(
        customer="acme",
        requested=[RequestedLine("stem-cnc", 1, {})],
        products=catalogue(),
        due_date=date(2030, 1, 1),
        priority="normal",
        raw_body=body,
    )
    assert now.matches(old)
    assert now.matches(now.resolved)
    assert not now.matches(VERSION + old)
    assert not RequestDigest(now.resolved, "0" * 64).matches(old)
