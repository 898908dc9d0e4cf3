"""Time a partition's closes in process: ``python -m bench.telemetry.profile_close [rounds]``.

One partition's share of the benchmark's workload (12 500 series of 10 k devices x 5 metrics
over 4 partitions, one reading a second each for 25 s, windows 10 s and 60 s, lateness 5 s),
then two closes, each made (``window_record``) and retired as the aggregator does it, no Kafka:

- a 10 s boundary in mid-stream (12 500 windows; the series have their next windows open);
- the end of the stream (every window left, 37 500: what the benchmark's markers close).

Prints the medians per window over ``rounds`` (default 5) fresh partitions.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

from contracts.telemetry import Quality
from services.telemetry.decode_fast import FastReading
from services.telemetry.emit import window_record
from services.telemetry.windows.partition import PartitionWindows

SERIES = 12_500
SECONDS = 25
T0 = 1_790_000_000_000  # a multiple of 60 s


def filled() -> PartitionWindows:
    pw = PartitionWindows((10_000, 60_000), 5_000)
    offset = 0
    for second in range(SECONDS):
        records = []
        for i in range(SERIES):
            ts = T0 + second * 1000 + i % 1000
            reading = FastReading(f"m{i % 5}", ts, float(i % 97), Quality.GOOD)
            records.append((f"dev-{i // 5:05d}", [reading], offset))
            offset += 1
        pw.add_records(records, Quality.BAD)
    return pw


def close(pw: PartitionWindows, watermark: int) -> tuple[float, int]:
    """Seconds per window of making and retiring what ``watermark`` closes, and how many."""
    pw.advance_to(watermark)
    start = time.perf_counter()
    made = pw.emit(window_record)
    retired = pw.retire()
    elapsed = time.perf_counter() - start
    assert retired == len(made)
    return elapsed / len(made), len(made)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    gc.collect()
    gc.freeze()
    mid, end = [], []
    n_mid = n_end = 0
    for _ in range(rounds):
        pw = filled()
        per, n_mid = close(pw, T0 + 10_000 + 5_000)
        mid.append(per)
        per, n_end = close(pw, 2**62)
        end.append(per)
    print(
        f"median of {rounds}: a 10 s boundary {1e6 * statistics.median(mid):.2f} us/window "
        f"({n_mid} windows), the end of the stream {1e6 * statistics.median(end):.2f} us/window "
        f"({n_end} windows)"
    )


if __name__ == "__main__":
    main()
