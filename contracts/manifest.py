"""The topic manifest: every topic declared once.

Local bootstrap (``millrace topics``), docker compose and the Kubernetes ``KafkaTopic`` resources
are generated from this list, and the AsyncAPI document describes it. Add a topic here, then run
``make contracts``.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.base import Contract
from contracts.masterdata import Customer, Machine, Product, Supplier
from contracts.orders import OrderCancelled, OrderPlaced, OrderStatusChanged
from contracts.production import OperationCompleted, OperationStarted
from contracts.scheduling import OeeReported, OperationScheduled, SchedulePublished
from contracts.telemetry import AlarmEvent, MachineState, ReadingsBatch, WindowAggregate

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic of the catalogue."""

    name: str
    key: str
    producer: str
    consumers: tuple[str, ...]
    description: str
    partitions: int = 6
    retention_ms: int | None = 7 * DAY_MS
    compacted: bool = False
    contract: type[Contract] | None = None

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"

    def config(self) -> dict[str, str]:
        """Kafka topic configs."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
        cfg = {"cleanup.policy": "delete"}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


def _master(
    name: str, key: str, consumers: tuple[str, ...], what: str, contract: type[Contract]
) -> TopicSpec:
    return TopicSpec(
        name=name,
        key=key,
        producer="masterdata loader",
        consumers=consumers,
        description=what,
        partitions=3,
        retention_ms=None,
        compacted=True,
        contract=contract,
    )


TOPICS: tuple[TopicSpec, ...] = (
    _master(
        "masterdata.machines.v1",
        "machine id",
        ("telemetry", "scheduling", "finance"),
        "Machines and their capabilities (compacted, latest state per machine).",
        Machine,
    ),
    _master(
        "masterdata.products.v1",
        "sku",
        ("orders", "scheduling", "traceability"),
        "Products with options, routings and bills of materials (compacted).",
        Product,
    ),
    _master(
        "masterdata.suppliers.v1",
        "supplier id",
        ("traceability", "finance"),
        "Suppliers (compacted).",
        Supplier,
    ),
    _master(
        "masterdata.customers.v1",
        "customer id",
        ("orders", "finance", "traceability"),
        "Customers that may place orders (compacted); orders refuses unknown ones.",
        Customer,
    ),
    TopicSpec(
        name="telemetry.readings.v1",
        key="device id",
        producer="devices, gateways, telemetry HTTP ingest",
        consumers=("telemetry aggregator",),
        description="One device's batch of readings.",
        partitions=12,
        retention_ms=3 * DAY_MS,
        contract=ReadingsBatch,
    ),
    TopicSpec(
        name="telemetry.readings.v1.late",
        key="device id",
        producer="telemetry",
        consumers=("reconciliation", "audit"),
        description=(
            "Readings that came after their device's window was emitted: one record per input "
            "record, headers name the windows missed and the input record."
        ),
        partitions=12,
        retention_ms=30 * DAY_MS,
        contract=ReadingsBatch,
    ),
    TopicSpec(
        name="telemetry.aggregates.v1",
        key="device id",
        producer="telemetry",
        consumers=("traceability", "finance", "dashboards"),
        description="One tumbling window of one metric of one device.",
        partitions=12,
        retention_ms=30 * DAY_MS,
        contract=WindowAggregate,
    ),
    TopicSpec(
        name="telemetry.alarms.v1",
        key="device id",
        producer="telemetry",
        consumers=("scheduling", "finance", "traceability"),
        description="Alarms raised and cleared.",
        retention_ms=90 * DAY_MS,
        contract=AlarmEvent,
    ),
    TopicSpec(
        name="telemetry.machine-states.v1",
        key="machine id",
        producer="telemetry",
        consumers=("scheduling", "finance", "OEE"),
        description="Machine state changes (RUNNING, IDLE, DOWN, MAINTENANCE).",
        retention_ms=90 * DAY_MS,
        contract=MachineState,
    ),
    *(
        TopicSpec(
            name=f"orders.{ev}.v1",
            key="order id",
            producer="orders",
            consumers=("scheduling", "finance", "subscribers"),
            description=what,
            retention_ms=365 * DAY_MS,
            contract=model,
        )
        for ev, what, model in (
            ("order-placed", "A customer order with its options was placed.", OrderPlaced),
            ("order-cancelled", "An order was cancelled.", OrderCancelled),
            ("order-status-changed", "An order moved through its lifecycle.", OrderStatusChanged),
        )
    ),
    TopicSpec(
        name="scheduling.operation-scheduled.v1",
        key="work order id",
        producer="scheduling",
        consumers=("shop floor", "orders"),
        description="An operation of a work order was scheduled on a machine.",
        retention_ms=90 * DAY_MS,
        contract=OperationScheduled,
    ),
    TopicSpec(
        name="scheduling.schedule-published.v1",
        key="plan id",
        producer="scheduling",
        consumers=("shop floor", "orders"),
        description="A new version of the production plan (work schedule) was committed.",
        retention_ms=90 * DAY_MS,
        contract=SchedulePublished,
    ),
    TopicSpec(
        name="scheduling.oee-reported.v1",
        key="machine id",
        producer="scheduling",
        consumers=("dashboards", "finance"),
        description="OEE (availability x performance x quality) of a machine over a closed hour.",
        retention_ms=365 * DAY_MS,
        contract=OeeReported,
    ),
    TopicSpec(
        name="production.operation-started.v1",
        key="work order id",
        producer="shop floor (MES, machines; the simulator in demos)",
        consumers=("orders", "traceability", "finance"),
        description="An operation started on a machine.",
        retention_ms=365 * DAY_MS,
        contract=OperationStarted,
    ),
    TopicSpec(
        name="production.operation-completed.v1",
        key="work order id",
        producer="shop floor (MES, machines; the simulator in demos)",
        consumers=("orders", "traceability", "finance"),
        description="An operation completed on a machine.",
        retention_ms=365 * DAY_MS,
        contract=OperationCompleted,
    ),
    TopicSpec(
        name="quality.inspection-recorded.v1",
        key="unit or lot id",
        producer="shop floor",
        consumers=("traceability", "finance"),
        description="An inspection result was recorded.",
        retention_ms=365 * DAY_MS,
    ),
    TopicSpec(
        name="supply.lot-received.v1",
        key="lot id",
        producer="receiving / ERP",
        consumers=("traceability", "finance"),
        description="A supplier lot was received.",
        retention_ms=365 * DAY_MS,
    ),
    TopicSpec(
        name="traceability.recall-opened.v1",
        key="recall id",
        producer="traceability",
        consumers=("orders", "finance", "subscribers"),
        description="A recall was opened.",
        retention_ms=365 * DAY_MS,
    ),
    *(
        TopicSpec(
            name=f"finance.{ev}.v1",
            key="account / contract id",
            producer="finance",
            consumers=("subscribers",),
            description=what,
            retention_ms=365 * DAY_MS,
        )
        for ev, what in (
            ("invoice-issued", "An invoice was issued."),
            ("usage-charge-posted", "A usage-based leasing charge was posted."),
            ("credit-score-updated", "A supplier credit score was updated."),
            ("premium-adjusted", "A device-risk insurance premium was adjusted."),
        )
    ),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in TOPICS}


def topic(name: str) -> TopicSpec:
    """The spec of a declared topic; KeyError for an undeclared one."""
    return BY_NAME[name]


def all_topic_names(*, with_dlq: bool = True) -> list[str]:
    """Every topic name, DLQs included (each consumed topic has one)."""
    names = [t.name for t in TOPICS]
    if with_dlq:
        names += [t.dlq for t in TOPICS]
    return names
