"""Field types that every contract shares: entity ids and event times.

They live here, not in any one domain's module, so that a contract imports only what it uses
and no domain's contracts depend on another's. Pydantic inlines these constraints into each
field's JSON Schema, so where a type is defined never shows in ``contracts/schemas/``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt

# An id is ASCII, starts with a letter or digit, and may hold the separators plant systems use
# (ISA-95 equipment paths, GS1 identifiers, ``<order_id>/<line_no>``): safe in a Kafka key, a
# URL path segment and a Prometheus label.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"

EntityId = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
"""The id of a device, machine, order, lot, product (sku), customer, supplier or plan."""

EpochMillis = Annotated[
    StrictInt,
    Field(ge=0, le=253_402_300_799_999, description="Event time, epoch milliseconds UTC."),
]
"""A point in time as an integer of epoch milliseconds UTC, up to the end of year 9999."""
