"""Checking an order request against the master-data views (products and customers) and the
due-date horizon.

Pure: the caller passes the products and the customer it knows, and today's date. Every
problem is returned with its location so the API can answer 422 with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from contracts.masterdata import Customer, Product
from contracts.orders import OrderLine


@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    options: Mapping[str, str]


class IntakeError(ValueError):
    """The request names something the catalogue does not allow."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def resolve_lines(
    requested: Sequence[RequestedLine],
    products: Mapping[str, Product],
    due_date: date,
    today: date,
) -> tuple[tuple[OrderLine, ...], str]:
    """Resolve options (defaults filled) and prices; return the lines and their currency.
    The due date is only checked not to be past (:func:`resolve_request` checks it all)."""
    past = [f"due_date: {due_date.isoformat()} is in the past"] if due_date < today else []
    lines, currency, problems = _lines(requested, products)
    if past or problems:
        raise IntakeError(past + problems)
    return lines, currency


def _lines(
    requested: Sequence[RequestedLine], products: Mapping[str, Product]
) -> tuple[tuple[OrderLine, ...], str, list[str]]:
    """The resolved lines, their currency, and every problem found with them."""
    problems: list[str] = []
    lines: list[OrderLine] = []
    currencies: set[str] = set()
    for i, req in enumerate(requested):
        where = f"lines.{i}"
        product = products.get(req.sku)
        if product is None:
            problems.append(f"{where}.sku: unknown sku {req.sku!r}")
            continue
        currencies.add(product.currency)
        if not product.min_order_qty <= req.quantity <= product.max_order_qty:
            problems.append(
                f"{where}.quantity: {req.quantity} outside "
                f"[{product.min_order_qty}, {product.max_order_qty}] for {req.sku}"
            )
        chosen: dict[str, str] = {}
        offered = {o.name: o for o in product.options}
        for name, value in req.options.items():
            option = offered.get(name)
            if option is None:
                problems.append(f"{where}.options.{name}: {req.sku} has no option {name!r}")
            elif value not in option.values:
                problems.append(f"{where}.options.{name}: {value!r} is not one of {option.values}")
            else:
                chosen[name] = value
        for name, option in offered.items():
            if name not in req.options:
                if option.default is None:
                    problems.append(f"{where}.options.{name}: required for {req.sku}")
                else:
                    chosen[name] = option.default
        lines.append(
            OrderLine(
                line_no=i + 1,
                sku=req.sku,
                quantity=req.quantity,
                options=chosen,
                operations=len(product.routing),
                unit_price_minor=product.unit_price_minor,
            )
        )
    if len(currencies) > 1:
        problems.append(f"lines: products priced in several currencies {sorted(currencies)}")
    return tuple(lines), currencies.pop() if currencies else "EUR", problems


def due_date_problems(due_date: date, today: date, max_due_days: int) -> list[str]:
    """A due date must lie between today and today plus the horizon (both included)."""
    if due_date < today:
        return [f"due_date: {due_date.isoformat()} is in the past"]
    horizon = today + timedelta(days=max_due_days)
    if due_date > horizon:
        return [
            f"due_date: {due_date.isoformat()} is beyond the {max_due_days}-day horizon"
            f" (latest {horizon.isoformat()})"
        ]
    return []


def resolve_request(
    *,
    customer_id: str,
    customer: Customer | None,
    requested: Sequence[RequestedLine],
    products: Mapping[str, Product],
    due_date: date,
    today: date,
    max_due_days: int,
) -> tuple[tuple[OrderLine, ...], str]:
    """Check the whole request: the customer is known (``customer`` is the view's record of
    ``customer_id``, None when unknown), the due date within the horizon, and every line as
    :func:`resolve_lines` does. Every problem found is reported at once."""
    problems: list[str] = []
    if customer is None:
        problems.append(f"customer: unknown customer {customer_id!r}")
    problems += due_date_problems(due_date, today, max_due_days)
    lines, currency, line_problems = _lines(requested, products)
    problems += line_problems
    if problems:
        raise IntakeError(problems)
    return lines, currency
