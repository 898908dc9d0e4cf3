"""What an idempotent replay is compared by: the request as resolved, not its bytes.

Two bodies ask for the same order when, once the customer is resolved (a customer token's own
customer, spelled out or left out) and each line's options are filled with the catalogue's
defaults, they name the same customer, lines, due date and priority. Prices and routings are
left out: they come from the catalogue, not from the caller. The digest never fails, so a
replay is answered even when the request would no longer pass intake (its due date is past).
A replay is resolved against the catalogue of its own time: if an option's default changed in
between, a body that leaves the option out now asks for something else, and gets 409.

Digests carry a version marker (``r1:``). A stored digest without one was made by earlier
releases from the raw body (``legacy``), and is compared with that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from contracts.masterdata import Product
from services.orders.domain.intake import RequestedLine

VERSION = "r1:"


def _sha256(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def resolved_options(line: RequestedLine, product: Product | None) -> dict[str, str]:
    """The line's options with the catalogue's defaults filled in (as given if the sku is
    unknown)."""
    defaults = {} if product is None else {o.name: o.default for o in product.options}
    return {k: v for k, v in defaults.items() if v is not None} | dict(line.options)


@dataclass(frozen=True)
class RequestDigest:
    """The digest stored with an order (``resolved``) and the one earlier releases stored
    for the same body (``legacy``)."""

    resolved: str
    legacy: str

    def matches(self, stored: str) -> bool:
        if stored.startswith(VERSION):
            return stored == self.resolved
        return stored == self.legacy


def request_digest(
    *,
    customer: str,
    requested: Sequence[RequestedLine],
    products: Mapping[str, Product],
    due_date: date,
    priority: str,
    raw_body: Mapping[str, Any],
) -> RequestDigest:
    """Digest the resolved request; ``raw_body`` is the body as JSON (for ``legacy``)."""
    resolved = {
        "customer": customer,
        "due_date": due_date.isoformat(),
        "priority": priority,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "options": resolved_options(line, products.get(line.sku)),
            }
            for line in requested
        ],
    }
    return RequestDigest(VERSION + _sha256(resolved), _sha256({**raw_body, "customer": customer}))
