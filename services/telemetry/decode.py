"""Decoding of ``telemetry.readings.v1`` records against the contract.

Poison input raises :class:`shared.dlq.InvalidMessageError` with a stable reason, so the caller
can dead-letter it with provenance and carry on.
"""

from __future__ import annotations

from pydantic import ValidationError

from contracts.telemetry import ReadingsBatch
from shared.dlq import InvalidMessageError


def decode_readings(
    value: bytes | None, key: bytes | None, now_ms: int, max_skew_ms: int
) -> ReadingsBatch:
    """Validate one record; reject schema errors, key mismatches and readings from the future."""
    if not value:
        raise InvalidMessageError("empty", "record has no value")
    try:
        batch = ReadingsBatch.model_validate_json(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "$"
        reason = "undecodable" if first.get("type") == "json_invalid" else "schema_invalid"
        raise InvalidMessageError(reason, f"{where}: {first['msg']}") from exc
    if key is not None and key != batch.device_id.encode():
        raise InvalidMessageError(
            "key_mismatch", f"key {key!r} differs from device_id {batch.device_id!r}"
        )
    limit = now_ms + max_skew_ms
    for reading in batch.readings:
        if reading.ts > limit:
            raise InvalidMessageError(
                "future_timestamp",
                f"reading {reading.metric}@{reading.ts} is {reading.ts - now_ms} ms ahead "
                f"of wall clock (max skew {max_skew_ms} ms)",
            )
    return batch
