"""The per-reading hot path: a partition's records of one poll are decoded, the alarm engine
observes their good readings, and the windows take them, in one pass (no I/O here).

Failures are collected, not raised: invalid input joins ``rejected`` and a record a stage
raises for joins ``failures`` (see ``failures.py``); the loop dead-letters both after the
pass. Exceptions are caught around each stage's loop, not per reading, so isolating a failure
costs the hot path nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from operator import attrgetter

from contracts.telemetry import Quality
from services.telemetry.aggregator.failures import Failure
from services.telemetry.aggregator.partition import Partition
from services.telemetry.decode_fast import FastReading, decode_readings_fast
from services.telemetry.engine.partition import PartitionEngine
from services.telemetry.kafka.records import RawRecord
from services.telemetry.windows.devices import DeviceWindows, LateRecord
from services.telemetry.windows.model import RecordFailedError
from shared.dlq import InvalidMessageError

_OFFSET = attrgetter("offset")
Rejected = list[tuple[RawRecord, InvalidMessageError]]


def add_records(
    part: Partition,
    records: Sequence[RawRecord],
    now: int,
    skew: int,
    watched: frozenset[str],
    *,
    rejected: Rejected,
    failures: list[Failure],
    late_out: list[LateRecord],
) -> tuple[int, int, dict[int, int]]:
    """Decode ``records`` and add their readings to the windows; (readings, bad-quality
    readings, late readings by window-size mask). With a clock per device, the records with
    late readings join ``late_out``. A record the windows raise for (``RecordFailedError``)
    joins ``failures`` and the records after it are added in another call (the counts of the
    call that failed are lost: metrics only)."""
    windows = part.windows
    while True:
        decoded = _decoded(
            part.engine, records, now, skew, watched, rejected=rejected, failures=failures
        )
        try:
            if isinstance(windows, DeviceWindows):
                return windows.add_records(decoded, Quality.BAD, late_out)
            return windows.add_records(((d, rs, o) for d, rs, o, _ in decoded), Quality.BAD)
        except RecordFailedError as err:
            if isinstance(err.__cause__, MemoryError):
                raise  # the process, not the record: the supervisor restarts
            i = bisect.bisect_left(records, err.offset, key=_OFFSET)
            failures.append(Failure("windows", records[i], err.__cause__ or err))
            records = records[i + 1 :]


def _decoded(
    engine: PartitionEngine,
    records: Sequence[RawRecord],
    now: int,
    skew: int,
    watched: frozenset[str],
    *,
    rejected: Rejected,
    failures: list[Failure],
) -> Iterator[tuple[str, list[FastReading], int, int]]:
    """(device, readings, offset, Kafka timestamp) of each record as it is decoded (nothing of
    a poll is kept: holding a poll's decoded records made the garbage collector's work grow);
    the alarm engine observes the good readings of its metrics on the way.

    A record the decoder raises for other than as invalid input is left out (a failure of
    stage ``decode``). One the alarm engine raises for is a failure of stage ``alarms``, yet
    still goes to the windows, as it does in a process of the windows role; the engine keeps
    what the record's readings before the failing one did (a replay does the same)."""
    bad_quality = Quality.BAD
    for record in records:
        try:
            batch = decode_readings_fast(record.value, record.key, now, skew)
        except InvalidMessageError as err:
            rejected.append((record, err))
            continue
        except MemoryError:
            raise  # the process, not the record: the supervisor restarts
        except Exception as exc:  # noqa: BLE001 (a processing error: see failures.py)
            failures.append(Failure("decode", record, exc))
            continue
        device, offset = batch.device_id, record.offset
        if watched:
            try:
                for r in batch.readings:
                    if r.metric in watched and r.quality is not bad_quality:
                        engine.observe(device, r.metric, r.ts, float(r.value), offset)
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 (a processing error: see failures.py)
                failures.append(Failure("alarms", record, exc))
        yield device, batch.readings, offset, record.timestamp
