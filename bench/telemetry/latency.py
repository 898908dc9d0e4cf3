"""Latency at a fixed share of Millrace's maximum rate, from a paced producer.

Window emit delay, window closed -> aggregate on Kafka: the aggregates topic is switched to
broker append time, and its record timestamp minus ``window_end + lateness`` is measured for
every window (of any size) whose close falls after the warm-up and before the last reading was
sent, so closed by data (not by idle time). Each run starts so that its measured time holds a
minute boundary, where the 10 s and 60 s windows close together (100 k in the benchmark, twice
a 10 s boundary): the slowest close of the stream is always measured.

With a clock per device (the default), a window closes on its own device's next reading at or
past ``window_end + lateness``, not at that time: the paced producer sends each device once
every ``10,000 x 5 / rate`` seconds (0.55 s at the benchmark's 91,600 readings/s), and the delay
from the deadline holds that wait. So the delay is also measured **since the closing reading**:
the window's append time minus the append time of the first reading of its device with
``ts >= window_end + lateness`` (both broker append times). That is the aggregator's part, and
the figure the emit goal is held to with a clock per device; the delay from the deadline is
reported beside it.

Alarm latency, reading sent -> alarm on Kafka: the alarms topic is switched to broker append
time, and its record timestamp minus the triggering reading's ``ts`` (the paced producer's wall
clock when it sent the reading) is measured.

Two deployments: ``apart`` (as docker compose and Kubernetes run it) has a windows process and an
alarms process (``MILLRACE_TELEMETRY_ROLE``), each with its own consumer group; otherwise one
process runs both (the ``all`` role). The CPU time each process used is reported with it, and,
while the paced producer ran, its own CPU time and how busy the whole machine was (the share of
all cores busy, from ``/proc/stat``): on a small machine the broker, the load generator and the
aggregator share the cores, and latency then says as much about the machine as about Millrace.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench.telemetry.kafka import paced_producer, recreate_topic, stamp_on_append
from bench.telemetry.machine import busy_share, machine_jiffies, own_cpu_s
from bench.telemetry.runs import Worker
from bench.telemetry.topics import end_offsets_of, read_all
from services.telemetry.kafka.batch_send import BatchSender

AGGREGATES = "telemetry.aggregates.v1"
ALARMS = "telemetry.alarms.v1"
# The first second or two of a run (the producer's and the consumer's first connections, the
# broker's first requests) delayed readings by up to about 0.6 s before they even reached the
# broker, and the first boundary's window records took up to 0.8 s to reach it (a fresh
# broker's first large produce requests); what is sent and closed in this warm-up is not
# measured. Sending starts half a second before a 10 s boundary, so that the first close (the
# windows that saw that half second) falls in the warm-up, 5.5 s in; and 20 s before a minute, so
# that the minute's close (100 k windows) comes 18.5 s into the measured time.
WARMUP_S = 7.0
START_BEFORE_MINUTE_S = 20.5
RULES = """\
alarms:
  - id: bench-overheat
    description: benchmark alarm, raised above 90 and cleared below 80
    severity: major
    when: {metric: bench_temp, above: 90}
    clear_when: {metric: bench_temp, below: 80}
"""


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def since_arrival(
    alarms: Sequence[tuple[str, int, int]], arrived: Mapping[tuple[str, int], int]
) -> list[int]:
    """For each alarm event as (device, ts of the reading that raised or cleared it, the
    event's append time), the append time minus that reading's own (``arrived``, by device and
    ts): alarm latency without the time the reading took to reach the broker, which on a shared
    machine includes the load generator's own delays. Alarms whose reading is not in
    ``arrived`` are left out."""
    return [at - arrived[(device, ts)] for device, ts, at in alarms if (device, ts) in arrived]


def since_close(
    windows: Sequence[tuple[str, int, int]], readings: Mapping[str, tuple[list[int], list[int]]]
) -> list[int]:
    """For each window as (device, deadline ``window_end + lateness``, the window's append
    time), that append time minus the append time of its device's first reading with ``ts`` at
    or past the deadline (``readings``: by device, the ``ts`` of its readings in the order sent,
    ascending, and their append times): the emit delay since the reading that closed it, with a
    clock per device. Windows with no such reading (closed by idle time) are left out."""
    out = []
    for device, deadline, at in windows:
        sent = readings.get(device)
        if sent is None:
            continue
        stamps, appended = sent
        i = bisect.bisect_left(stamps, deadline)
        if i < len(stamps):
            out.append(at - appended[i])
    return out


def start_delay_s(now_s: float, at_least_s: float) -> float:
    """How long to wait, at least ``at_least_s``, for the next time ``START_BEFORE_MINUTE_S``
    before a minute (see ``WARMUP_S``)."""
    earliest = now_s + at_least_s + START_BEFORE_MINUTE_S
    return math.ceil(earliest / 60) * 60 - START_BEFORE_MINUTE_S - now_s


def _templates(devices: int, metrics: int) -> list[tuple[bytes, bytes, bytes]]:
    """(key, body before the ts, body after it) of each series' reading: the loop below then
    only formats the send time in."""
    out = []
    for series in range(devices * metrics):
        device, metric = divmod(series, metrics)
        dev = f"dev-{device:05d}"
        body = {"device_id": dev, "readings": [{"metric": f"m{metric}", "ts": 0, "value": 50.0}]}
        before, after = orjson.dumps(body).split(b'"ts":0', 1)
        out.append((dev.encode(), before, after))
    return out


def paced(
    bootstrap: str, topic: str, rate: float, seconds: float, devices: int, metrics: int
) -> int:
    """Send ``rate`` readings/s (one per message) for ``seconds``; alarm devices flip every
    250 ms. Returns the wall-clock ms of the last send."""
    return asyncio.run(_paced(bootstrap, topic, rate, seconds, devices, metrics))


async def _paced(
    bootstrap: str, topic: str, rate: float, seconds: float, devices: int, metrics: int
) -> int:
    """Every 10 ms tick, the readings due are stamped with the wall clock, appended to one
    record batch per partition and handed to the producer at once (the aggregator's own
    ``BatchSender``, keys partitioned as the default partitioner does). The load generator
    shares the machine's two cores with the broker and the aggregator: with librdkafka's
    ``produce()`` per message (linger 1 ms), a 45 s run at 80 k readings/s took 16.7-18.4 s of
    the load generator's CPU and 15-16 s of the broker's request handling; batches per tick took
    13-14 s and about 8 s, and the readings reached the broker sooner."""
    p = paced_producer(bootstrap)
    await p.start()
    try:
        out = BatchSender(p, topic, batch_size=1 << 20)  # paced_producer(): no compression
        await out.refresh()
        templates = _templates(devices, metrics)
        tick = 0.01
        per_tick = rate * tick
        sent = 0
        i = 0
        start = time.monotonic()
        next_flip = start
        flips = 0
        acks: list[asyncio.Future[None]] = []
        while (elapsed := time.monotonic() - start) < seconds:
            now_ms = time.time_ns() // 1_000_000
            due = int(per_tick * (elapsed / tick + 1)) - sent
            for _ in range(due):
                key, before, after = templates[i % len(templates)]
                i += 1
                out.append(key, b'%b"ts":%d%b' % (before, now_ms, after), [])
            sent += due
            if time.monotonic() >= next_flip:
                flips += 1
                value = 95.0 if flips % 2 else 70.0
                for a in range(4):
                    dev = f"alarm-dev-{a}"
                    body = {
                        "device_id": dev,
                        "readings": [{"metric": "bench_temp", "ts": now_ms, "value": value}],
                    }
                    out.append(dev.encode(), orjson.dumps(body), [])
                next_flip += 0.25
            if not out.empty:
                acks.append(out.flush())
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - start - elapsed)))
        await asyncio.gather(*acks)
    finally:
        await p.stop()
    return time.time_ns() // 1_000_000


def measure(
    bootstrap: str, rate: float, seconds: float, lateness_ms: int, *, apart: bool = True
) -> dict[str, Any]:
    """Pace ``rate`` for ``WARMUP_S`` + ``seconds``; measure what was sent after the warm-up."""
    topic = "bench.latency"
    recreate_topic(bootstrap, topic, 4)
    stamp_on_append(bootstrap, ALARMS, AGGREGATES)
    stamp_on_append(bootstrap, topic)
    aggregates_from = end_offsets_of(bootstrap, AGGREGATES)
    alarms_from = end_offsets_of(bootstrap, ALARMS)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(RULES)
        group = f"bench-latency-{uuid.uuid4().hex[:8]}"
        extra = ["--rules", str(rules)]
        if os.environ.get("BENCH_WINDOWS"):  # e.g. "60s": how much the window bursts cost
            extra += ["--windows", os.environ["BENCH_WINDOWS"]]
        if apart:
            workers = {
                "windows": Worker("millrace", bootstrap, topic, group, *extra, "--role", "windows"),
                "alarms": Worker("millrace", bootstrap, topic, group, *extra, "--role", "alarms"),
            }
        else:
            workers = {"all": Worker("millrace", bootstrap, topic, group, *extra)}
        # Join the group before the first reading (6 s), and start at the time that puts the
        # first close in the warm-up and a minute boundary's close in the measured time.
        time.sleep(start_delay_s(time.time(), at_least_s=6))
        started = time.time_ns() // 1_000_000 + int(WARMUP_S * 1000)
        machine_before, own_before = machine_jiffies(), own_cpu_s()
        last_send = paced(bootstrap, topic, rate, WARMUP_S + seconds, devices=10_000, metrics=5)
        machine_after, load_cpu_s = machine_jiffies(), own_cpu_s() - own_before
        time.sleep(3)
        reports = {role: worker.stop() for role, worker in workers.items()}
    delays = []
    closed: list[tuple[str, int, int]] = []  # (device, deadline, append time)
    for msg in read_all(bootstrap, AGGREGATES, aggregates_from):
        w = orjson.loads(msg.value())
        due = w["window_end"] + lateness_ms
        if started <= due <= last_send:
            delays.append(msg.timestamp()[1] - due)
            closed.append((w["device_id"], due, msg.timestamp()[1]))
    # When the alarm devices' readings reached the broker (its append time), by (device, ts);
    # and every other device's readings, for the delay since the closing reading.
    arrived: dict[tuple[str, int], int] = {}
    sent: dict[str, tuple[list[int], list[int]]] = {}
    for msg in read_all(bootstrap, topic, {}):
        key = msg.key()
        if key and key.startswith(b"alarm-dev-"):
            body = orjson.loads(msg.value())
            if body["readings"][0]["ts"] >= started:
                arrived[(body["device_id"], body["readings"][0]["ts"])] = msg.timestamp()[1]
        elif key:
            value = msg.value()
            at = value.index(b'"ts":') + 5
            ts = int(value[at : value.index(b",", at)])
            stamps, appended = sent.setdefault(key.decode(), ([], []))
            if not stamps or ts > stamps[-1]:  # a device's metrics share a send's ts
                stamps.append(ts)
                appended.append(msg.timestamp()[1])
    after_close = since_close(closed, sent)
    # How late they reached it (minus the producer's wall clock in ts): the part of alarm
    # latency before the aggregator.
    arrival = [at - ts for (_, ts), at in arrived.items()]
    alarms: list[tuple[int, int]] = []  # (latency, ms after the last 10 s boundary)
    raised: list[tuple[str, int, int]] = []  # (device, reading ts, alarm append time)
    for msg in read_all(bootstrap, ALARMS, alarms_from):
        a = orjson.loads(msg.value())
        if a["device_id"].startswith("alarm-dev-") and a["ts"] >= started:
            alarms.append((msg.timestamp()[1] - a["ts"], a["ts"] % 10_000))
            raised.append((a["device_id"], a["ts"], msg.timestamp()[1]))
    alarm_lat = [latency for latency, _ in alarms]
    after_arrival = since_arrival(raised, arrived)
    return {
        "rate_readings_per_s": rate,
        "seconds": seconds,
        "warmup_s": WARMUP_S,
        "windows_measured": len(delays),
        "window_emit_delay_p50_ms": _pct(delays, 0.5),
        "window_emit_delay_p99_ms": _pct(delays, 0.99),
        "window_emit_delay_max_ms": max(delays) if delays else None,
        # From the device's reading that closed the window (see the module): the aggregator's
        # part with a clock per device.
        "window_emit_delay_since_close_p50_ms": _pct(after_close, 0.5),
        "window_emit_delay_since_close_p99_ms": _pct(after_close, 0.99),
        "window_emit_delay_since_close_max_ms": max(after_close) if after_close else None,
        "windows_measured_since_close": len(after_close),
        "alarms_measured": len(alarm_lat),
        "alarm_latency_p50_ms": _pct(alarm_lat, 0.5),
        "alarm_latency_p99_ms": _pct(alarm_lat, 0.99),
        "alarm_latency_mean_ms": statistics.fmean(alarm_lat) if alarm_lat else None,
        # Where the slowest alarms were: boundaries (window closes at +lateness) or not.
        "alarm_slowest_ms_and_ms_after_10s_boundary": sorted(alarms, reverse=True)[:12],
        "alarm_reading_arrival_p50_ms": _pct(arrival, 0.5),
        "alarm_reading_arrival_p99_ms": _pct(arrival, 0.99),
        # Alarm latency from the reading's arrival at the broker on: the aggregator's part.
        "alarm_latency_since_arrival_p50_ms": _pct(after_arrival, 0.5),
        "alarm_latency_since_arrival_p99_ms": _pct(after_arrival, 0.99),
        "deployment": "windows and alarms apart" if apart else "one process",
        "rss_peak_mib": {role: r.get("rss_sampled_peak_mib") for role, r in reports.items()},
        "cpu_s": {role: round(r.get("cpu_s", 0.0), 1) for role, r in reports.items()},
        # While the paced producer ran: its own CPU time (the Python loop and librdkafka's
        # threads), and how busy the whole machine was (broker, workers, load generator and
        # anything else), as a share of all its cores.
        "load_generator_cpu_s": round(load_cpu_s, 1),
        "machine_cpu_busy_share": busy_share(machine_before, machine_after),
    }


def measure_runs(
    bootstrap: str, rate: float, seconds: float, lateness_ms: int, runs: int, *, apart: bool = True
) -> dict[str, Any]:
    """:func:`measure` ``runs`` times: each figure is the median over the runs (a single run's
    p99 rests on a handful of samples around one or two window boundaries, and on this shared
    machine single runs varied by a factor of two or more); every run is kept under ``runs``."""
    each = [measure(bootstrap, rate, seconds, lateness_ms, apart=apart) for _ in range(runs)]
    out: dict[str, Any] = {}
    for name, value in each[0].items():
        values = [run[name] for run in each]
        numbers = [v for v in values if isinstance(v, (int, float))]
        if len(numbers) == len(values) and not isinstance(value, bool):
            out[name] = statistics.median(numbers)
    out["runs"] = each
    return out
