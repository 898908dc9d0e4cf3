"""Checking an order request against the product catalogue (the local master-data view).

Pure: the caller passes the products it knows. Every problem is returned with its location
so the API can answer 422 with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from contracts.masterdata import Product
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
    """Resolve options (defaults filled) and prices; return the lines and their currency."""
    problems: list[str] = []
    if due_date < today:
        problems.append(f"due_date: {due_date.isoformat()} is in the past")
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
    if problems:
        raise IntakeError(problems)
    return tuple(lines), currencies.pop() if currencies else "EUR"
