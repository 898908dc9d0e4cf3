"""Decoding of ``telemetry.readings.v1`` records against the contract.

Poison input raises :class:`shared.dlq.InvalidMessageError` with a stable reason, so the caller
can dead-letter it with provenance and carry on. This is the reference decoder; the hot path
uses :mod:`services.telemetry.decode_fast`, which falls back to this one for every record it
does not accept itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pydantic import ValidationError

from contracts.telemetry import ReadingsBatch
from shared.dlq import InvalidMessageError


class _Stamped(Protocol):
    @property
    def metric(self) -> str: ...
    @property
    def ts(self) -> int: ...


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
    except OverflowError as exc:
        # pydantic's finite-number check lets this escape for an integer beyond float range;
        # uncaught, one such record would crash-loop the aggregator.
        raise InvalidMessageError("schema_invalid", f"$: {exc}") from exc
    check_key(key, batch.device_id)
    check_skew(batch.readings, now_ms, max_skew_ms)
    return batch


def check_key(key: bytes | None, device_id: str) -> None:
    """The record key must be the device id, or partitioning (and so ordering) is wrong."""
    if key is not None and key != device_id.encode():
        raise InvalidMessageError(
            "key_mismatch", f"key {key!r} differs from device_id {device_id!r}"
        )


def check_skew(readings: Iterable[_Stamped], now_ms: int, max_skew_ms: int) -> None:
    """A reading far in the future would drag the watermark ahead and close windows early."""
    limit = now_ms + max_skew_ms
    for reading in readings:
        if reading.ts > limit:
            raise InvalidMessageError(
                "future_timestamp",
                f"reading {reading.metric}@{reading.ts} is {reading.ts - now_ms} ms ahead "
                f"of wall clock (max skew {max_skew_ms} ms)",
            )
