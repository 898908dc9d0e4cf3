"""Master data contracts: machines, products, suppliers and customers on compacted topics
keyed by id.

Vocabulary follows ISA-95 / B2MML where it applies: a product's routing is its *product
segment* list (``ProductSegment``), each segment needing an equipment *capability*
(``EquipmentCapability``) with a setup and a per-unit run duration; the bill of materials is
the *material specification* (``MaterialSpecification``: material id and quantity per unit);
a machine is an *equipment* element. Durations are integer seconds; money is integer minor
units with an ISO 4217 currency, never float. A tombstone (null value) on a topic withdraws
the record: consumers forget it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, model_validator

from contracts.base import Contract
from contracts.types import EntityId

Name = Annotated[str, Field(min_length=1, max_length=200)]
Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]
OptionName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
OptionValue = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
MinorUnits = Annotated[StrictInt, Field(ge=0, description="Amount in the currency's minor unit.")]
Seconds = Annotated[StrictInt, Field(ge=0, le=30 * 24 * 3600)]


class ProductOption(Contract):
    """A choice the customer makes when ordering (colour, size, engraving...).

    ``default`` is used when the order leaves the option out; without a default the option
    is required.
    """

    name: OptionName
    values: Annotated[list[OptionValue], Field(min_length=1, max_length=100)]
    default: OptionValue | None = None

    @model_validator(mode="after")
    def _default_is_a_value(self) -> ProductOption:
        if self.default is not None and self.default not in self.values:
            raise ValueError(f"default {self.default!r} is not one of the values")
        return self


class Operation(Contract):
    """One step of a routing (B2MML ``ProductSegment``), in ``seq`` order.

    ``capability`` names the equipment capability a machine must offer; ``setup_s`` is paid
    once per work order, ``run_s_per_unit`` per unit produced.
    """

    seq: Annotated[StrictInt, Field(ge=1, le=999)]
    name: Name
    capability: Capability
    setup_s: Seconds
    run_s_per_unit: Seconds


class BomLine(Contract):
    """One material of the bill of materials (B2MML ``MaterialSpecification``), per unit."""

    material_id: EntityId
    quantity: Annotated[str, Field(pattern=r"^\d{1,9}(\.\d{1,6})?$", description="Decimal.")]
    unit: Annotated[str, Field(min_length=1, max_length=16, description="UN/CEFACT code.")]
    supplier_ids: list[EntityId] = []


class Product(Contract):
    """``masterdata.products.v1``: a sellable product definition. Key: ``sku``.

    ``routing`` holds 1..20 operations with unique, increasing ``seq``. Order quantities
    outside ``[min_order_qty, max_order_qty]`` are refused at intake.
    """

    sku: EntityId
    name: Name
    options: list[ProductOption] = []
    routing: Annotated[list[Operation], Field(min_length=1, max_length=20)]
    bom: list[BomLine] = []
    unit_price_minor: MinorUnits = 0
    currency: Currency = "EUR"
    min_order_qty: Annotated[StrictInt, Field(ge=1)] = 1
    max_order_qty: Annotated[StrictInt, Field(ge=1, le=1_000_000)] = 10_000

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        seqs = [op.seq for op in self.routing]
        if seqs != sorted(set(seqs)):
            raise ValueError("routing seq must be unique and increasing")
        if len({o.name for o in self.options}) != len(self.options):
            raise ValueError("option names must be unique")
        if self.min_order_qty > self.max_order_qty:
            raise ValueError("min_order_qty exceeds max_order_qty")
        return self


class Machine(Contract):
    """``masterdata.machines.v1``: one piece of equipment. Key: ``machine_id``.

    ``machine_id`` is also the telemetry ``device_id`` of the machine. ``hourly_rate_minor``
    is the leasing price per machine hour (finance), ``work_center`` the ISA-95 work center.
    """

    machine_id: EntityId
    name: Name
    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=50)]
    work_center: Name
    metrics: list[Annotated[str, Field(min_length=1, max_length=128)]] = []
    hourly_rate_minor: MinorUnits = 0
    currency: Currency = "EUR"
    lessor: EntityId | None = None


class Supplier(Contract):
    """``masterdata.suppliers.v1``: a material supplier. Key: ``supplier_id``.

    ``gln`` is the GS1 Global Location Number of the supplier's site when known (EPCIS
    ``source`` of received lots).
    """

    supplier_id: EntityId
    name: Name
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")]
    gln: Annotated[str, Field(pattern=r"^\d{13}$")] | None = None
    materials: list[EntityId] = []


class Customer(Contract):
    """``masterdata.customers.v1``: a customer that may place orders. Key: ``customer_id``.

    The ordering party of B2MML's order documents (ERP ``CustomerID``). ``country`` is where
    the customer is based; ``currency`` the ISO 4217 code it is invoiced in when it differs
    from the products' prices; ``credit_limit_minor`` the open amount finance may extend to
    it, in minor units of that currency (absent: not set); ``gln`` the GS1 Global Location
    Number of its ship-to site when known (EPCIS ``destination``).
    """

    customer_id: EntityId
    name: Name
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")]
    currency: Currency | None = None
    credit_limit_minor: MinorUnits | None = None
    gln: Annotated[str, Field(pattern=r"^\d{13}$")] | None = None
