"""Machine-state changes -> ``telemetry.machine-states.v1`` records.

Every ``ce_id`` is derived from what identifies the fact, ``(machine, since, state)``, so a
replay republishes the same event.
"""

from __future__ import annotations

import orjson

from contracts.envelope import (
    CloudEvent,
    Headers,
    ce_type_for,
    derived_id,
    rfc3339_from_millis,
    schema_id_for,
)
from services.telemetry.states.instance import StateChange

STATES_TOPIC = "telemetry.machine-states.v1"
_SOURCE = "/millrace/telemetry"

# (topic, key, value, headers), as the engine's monitor sends it.
Record = tuple[str, bytes, bytes, Headers]


def encode_state(c: StateChange) -> Record:
    data = {
        "machine_id": c.machine_id,
        "state": c.state.value,
        "since": c.since,
        "previous": c.previous.value if c.previous is not None else None,
    }
    event = CloudEvent(
        id=derived_id("machine-state", c.machine_id, c.since, c.state.value),
        source=_SOURCE,
        type=ce_type_for(STATES_TOPIC),
        subject=c.machine_id,
        time=rfc3339_from_millis(c.since),
        dataschema=schema_id_for(STATES_TOPIC),
    )
    return STATES_TOPIC, c.machine_id.encode(), orjson.dumps(data), event.headers()
