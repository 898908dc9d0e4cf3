"""Telemetry contracts, fixed (docs/architecture.md): other systems and benchmarks rely on them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt

from contracts.base import Contract

# Re-exported (``as``, for mypy): modules written before contracts.types import them from here.
from contracts.types import ID_PATTERN
from contracts.types import EntityId as EntityId  # noqa: PLC0414
from contracts.types import EpochMillis as EpochMillis  # noqa: PLC0414

MetricName = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
FiniteNumber = Annotated[
    StrictInt | StrictFloat,
    Field(allow_inf_nan=False, description="A finite number; NaN and ±Infinity are rejected."),
]


class Quality(StrEnum):
    """OPC UA style quality of a reading."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class Reading(Contract):
    """One sample of one metric."""

    metric: MetricName
    ts: EpochMillis
    value: FiniteNumber
    quality: Quality = Quality.GOOD


class ReadingsBatch(Contract):
    """``telemetry.readings.v1``: one device's batch of readings (a batch of one is normal).

    Key: ``device_id``.
    """

    device_id: EntityId
    readings: Annotated[list[Reading], Field(min_length=1, max_length=10_000)]


class WindowAggregate(Contract):
    """``telemetry.aggregates.v1``: one tumbling window of one metric of one device.

    Windows are aligned to the Unix epoch (``window_start = ts - ts % size``); ``window_end`` is
    exclusive. ``stddev`` is the population standard deviation; ``last`` is the value with the
    greatest ``ts``. The CloudEvents ``ce_id`` is derived from
    ``(device_id, metric, window size, window_start)``, so a window emitted twice is one event.
    Key: ``device_id``.
    """

    device_id: EntityId
    metric: MetricName
    window_start: EpochMillis
    window_end: EpochMillis
    count: Annotated[StrictInt, Field(ge=1)]
    min: float
    max: float
    mean: float
    stddev: Annotated[float, Field(ge=0)]
    last: float


class Severity(StrEnum):
    """Alarm severity, ISA-18.2 style priorities."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"


class AlarmEvent(Contract):
    """``telemetry.alarms.v1``: an alarm raised or cleared for one device and one rule.

    Key: ``device_id``. At most one alarm per ``(device_id, rule)`` is active at a time.
    ``ts`` is the event time of this transition; ``metric``, ``value`` and ``threshold`` are the
    rule's primary metric, its last value at that time and the limit it is judged against.
    The CloudEvents ``ce_id`` is derived from ``(device_id, rule, raised_at, state)``, so a
    replay republishes the same event.
    """

    device_id: EntityId
    rule: Annotated[str, Field(min_length=1, max_length=128)]
    state: Literal["raised", "cleared"]
    severity: Severity
    metric: MetricName
    value: float
    threshold: float
    ts: EpochMillis
    alarm_id: Annotated[
        str | None,
        Field(
            max_length=64,
            description="Identifies one alarm from raise to clear; the same in both events.",
        ),
    ] = None
    raised_at: Annotated[
        EpochMillis | None, Field(description="Event time at which this alarm was raised.")
    ] = None
    description: Annotated[
        str | None, Field(max_length=512, description="The rule's human description.")
    ] = None


class MachineStateName(StrEnum):
    """Machine states, as scheduling and finance consume them."""

    RUNNING = "RUNNING"
    IDLE = "IDLE"
    DOWN = "DOWN"
    MAINTENANCE = "MAINTENANCE"


class MachineState(Contract):
    """``telemetry.machine-states.v1``: a machine's state, published on change.

    Key: ``machine_id``. ``since`` is the event time (epoch ms) at which the state began.
    """

    machine_id: EntityId
    state: MachineStateName
    since: EpochMillis
    previous: MachineStateName | None = None
