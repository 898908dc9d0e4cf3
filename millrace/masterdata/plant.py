"""A plant file (machines, products, suppliers, customers) read and checked against the contracts.

Every record is validated before anything is published, and references are checked (each
routing capability is offered by some machine, each BOM supplier exists), so a typo fails the
load instead of reaching production.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from contracts.masterdata import Customer, Machine, Product, Supplier


class PlantError(ValueError):
    """The plant file is not valid; the message says where."""


@dataclass(frozen=True)
class Plant:
    machines: tuple[Machine, ...]
    products: tuple[Product, ...]
    suppliers: tuple[Supplier, ...]
    customers: tuple[Customer, ...] = ()


T = TypeVar("T", Machine, Product, Supplier, Customer)


def _records(raw: Any, section: str, model: type[T]) -> list[T]:
    items = raw.get(section) or []
    if not isinstance(items, list):
        raise PlantError(f"{section}: expected a list")
    out: list[T] = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            raise PlantError(f"{section}[{i}]: {exc}") from exc
    return out


def _unique(kind: str, ids: list[str]) -> None:
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise PlantError(f"duplicate {kind} ids: {', '.join(dupes)}")


def parse_plant(raw: Any) -> Plant:
    """Validate a parsed plant document; raise PlantError with the first problem found."""
    if not isinstance(raw, dict):
        raise PlantError(
            "a plant file is a mapping with machines, products, suppliers and customers"
        )
    machines = _records(raw, "machines", Machine)
    products = _records(raw, "products", Product)
    suppliers = _records(raw, "suppliers", Supplier)
    customers = _records(raw, "customers", Customer)
    _unique("machine", [m.machine_id for m in machines])
    _unique("product", [p.sku for p in products])
    _unique("supplier", [s.supplier_id for s in suppliers])
    _unique("customer", [c.customer_id for c in customers])
    offered = {c for m in machines for c in m.capabilities}
    known_suppliers = {s.supplier_id for s in suppliers}
    for product in products:
        for op in product.routing:
            if op.capability not in offered:
                raise PlantError(f"{product.sku} op {op.seq}: no machine offers {op.capability}")
        for line in product.bom:
            missing = set(line.supplier_ids) - known_suppliers
            if missing:
                raise PlantError(f"{product.sku} bom: unknown suppliers {sorted(missing)}")
    return Plant(tuple(machines), tuple(products), tuple(suppliers), tuple(customers))


def load_plant(path: str | Path) -> Plant:
    """Read and validate a plant YAML file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PlantError(f"{path}: not valid YAML: {exc}") from exc
    return parse_plant(raw)
