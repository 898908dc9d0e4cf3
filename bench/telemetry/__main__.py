"""``make bench-telemetry``: Millrace's aggregator vs the aiokafka ceiling vs Quix Streams (and,
for information, the ceiling's drain on Millrace's raw consumer records).

On a real local Kafka (a throwaway broker, or ``MILLRACE_KAFKA_BOOTSTRAP``): check that Millrace
and Quix produce the same windows, time the three systems on two pre-filled workloads (median
of alternating runs), measure latency at half of Millrace's maximum rate (windows and alarms in
processes of their own, as deployed, and in one process for comparison), and the memory of
100 k devices x 10 metrics of open windows. Writes ``bench/results/telemetry.json``.

Also the backfill and sparse workloads of ``bench/telemetry/backfill.py`` (``BENCH_ONLY=backfill``
runs only those, at ``BENCH_SCALE`` of their sizes). Sizes: ``BENCH_READINGS`` (default
2,000,000), ``BENCH_RUNS`` (default 5; Quix Streams in the first ``BENCH_QUIX_RUNS``, default 3,
of them), ``BENCH_LATENCY_S`` (default 40) and ``BENCH_LATENCY_RUNS`` (default 3, medians
reported); committed results come from the defaults.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

from bench.telemetry.backfill import run_backfill, run_sparse, workloads
from bench.telemetry.check import same_windows
from bench.telemetry.kafka import broker, ensure_manifest_topics
from bench.telemetry.latency import measure, measure_runs
from bench.telemetry.runs import ROOT, Result, prefill, timed_run
from bench.telemetry.workload import Workload

RESULTS = ROOT / "bench" / "results" / "telemetry.json"
# raw_drain: the ceiling's drain on the raw records of Millrace's own consumer
# (services/telemetry/kafka/records.py), for information: the ceiling is the plain
# aiokafka drain.
KINDS = ("ceiling", "millrace", "quix", "raw_drain")
LATENESS_MS = 5000


def throughput(bootstrap: str, w: Workload, runs: int, quix_runs: int) -> dict[str, Any]:
    """``runs`` rounds of alternating runs; Quix Streams, at minutes a run, only in the first
    ``quix_runs`` rounds (the others time the three fast drains, whose ratio moves most)."""
    topic = f"bench.{w.name}"
    ends = prefill(bootstrap, topic, w)
    rounds: list[dict[str, Result]] = []
    for i in range(runs):
        kinds = KINDS if i < quix_runs else tuple(k for k in KINDS if k != "quix")
        order = kinds if i % 2 == 0 else tuple(reversed(kinds))
        rounds.append({})
        for kind in order:
            r = timed_run(kind, bootstrap, topic, w, ends, timeout_s=900)
            rounds[-1][kind] = r
            print(
                f"  {w.name} run {i + 1}: {kind:9s} {r.readings_per_s:>10,.0f} readings/s",
                flush=True,
            )
    results = {k: [rd[k] for rd in rounds if k in rd] for k in KINDS}
    median = {k: statistics.median(r.readings_per_s for r in rs) for k, rs in results.items()}
    # Millrace against each system within each round: the machine drifts between rounds
    # (the ceiling by up to a sixth), and within one the systems saw about the same machine.
    per_round = {
        other: [
            round(rd["millrace"].readings_per_s / rd[other].readings_per_s, 3)
            for rd in rounds
            if other in rd
        ]
        for other in ("ceiling", "quix", "raw_drain")
    }
    return {
        "workload": w.describe(),
        "readings_per_s": median,
        "millrace_vs_quix": median["millrace"] / median["quix"],
        "millrace_vs_ceiling": median["millrace"] / median["ceiling"],
        "millrace_vs_raw_drain": median["millrace"] / median["raw_drain"],
        # The median of the per-round ratios (the same runs, paired by round).
        "millrace_vs_ceiling_paired": statistics.median(per_round["ceiling"]),
        "rss_peak_mib": {k: max(r.rss_peak_mib for r in rs) for k, rs in results.items()},
        "runs": {k: [round(r.readings_per_s) for r in rs] for k, rs in results.items()},
        "ratios_per_round": per_round,
    }


def memory() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.telemetry.memory", "100000", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MILLRACE_LOG_LEVEL": "WARNING"},
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def versions() -> dict[str, str]:
    names = ["millrace", "aiokafka", "msgspec", "pydantic", "quixstreams", "confluent-kafka"]
    found = {n: metadata.version(n) for n in names}
    found["python"] = platform.python_version()
    found["kafka_broker"] = "4.1.1 (millrace.infra local broker, KRaft, one node)"
    found["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    return found


def latency_only(rate: float) -> None:
    """``BENCH_ONLY=latency``: just the paced-latency part at a given rate (``BENCH_RATE``,
    default 91,600 readings/s, 50 % of the committed max), windows and alarms apart unless
    ``BENCH_DEPLOYMENT=one``; prints JSON, writes no results."""
    apart = os.environ.get("BENCH_DEPLOYMENT", "apart") != "one"
    with broker() as bootstrap:
        ensure_manifest_topics(bootstrap)
        seconds = float(os.environ.get("BENCH_LATENCY_S", "40"))
        lat = measure(bootstrap, rate, seconds, LATENESS_MS, apart=apart)
    print(json.dumps(lat, indent=2))


def backfill_only() -> None:
    """``BENCH_ONLY=backfill``: just the backfill and sparse workloads at ``BENCH_SCALE`` of
    their sizes (default 1; ``BENCH_QUIX=0`` leaves Quix Streams out); prints JSON, writes no
    results."""
    backfill, live, sparse = workloads(float(os.environ.get("BENCH_SCALE", "1")))
    with broker() as bootstrap:
        ensure_manifest_topics(bootstrap)
        out = run_backfill(bootstrap, backfill, live)
        out |= run_sparse(bootstrap, sparse, quix=os.environ.get("BENCH_QUIX", "1") != "0")
    print(json.dumps(out, indent=2))


def main() -> None:
    if os.environ.get("BENCH_ONLY") == "latency":
        latency_only(float(os.environ.get("BENCH_RATE", "91600")))
        return
    if os.environ.get("BENCH_ONLY") == "backfill":
        backfill_only()
        return
    readings = int(os.environ.get("BENCH_READINGS", "2000000"))
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    quix_runs = min(runs, int(os.environ.get("BENCH_QUIX_RUNS", "3")))
    started = time.time()
    single = Workload("single", readings, devices=10_000, metrics=5, per_message=1)
    batched = Workload("batched", readings, devices=10_000, metrics=5, per_message=10)
    check_w = Workload(
        "check", 60_000, 500, 4, per_message=1, seed=11, late_share=0.01, disorder_share=0.05
    )
    with broker() as bootstrap:
        ensure_manifest_topics(bootstrap)
        print("checking that Millrace and Quix Streams emit the same windows ...", flush=True)
        check = same_windows(bootstrap, check_w)
        print(
            f"  same: {check['same']} ({check['millrace_windows']} windows, "
            f"{check['bit_identical']} bit-identical, largest relative difference of mean or "
            f"stddev {check['max_relative_difference']:.1e}; {check['only_millrace']} on time "
            f"by their device's clock only, {check['off_the_per_device_rule']} off that rule)"
        )
        if not check["same"]:
            raise SystemExit(f"window results differ: {check}")
        print("throughput, one reading per message ...", flush=True)
        one = throughput(bootstrap, single, runs, quix_runs)
        print("throughput, 10 readings per message ...", flush=True)
        ten = throughput(bootstrap, batched, runs, quix_runs)
        backfill_w, live_w, sparse_w = workloads()
        print("backfill: gateways uploading their history one after another ...", flush=True)
        backfill = run_backfill(bootstrap, backfill_w, live_w)
        print(f"  {backfill}", flush=True)
        print("sparse: one reading per series per window ...", flush=True)
        sparse = run_sparse(bootstrap, sparse_w)
        print(f"  {sparse}", flush=True)
        rate = 0.5 * one["readings_per_s"]["millrace"]
        print(
            f"latency at {rate:,.0f} readings/s (50 % of Millrace's max), windows and alarms "
            "in processes of their own ...",
            flush=True,
        )
        seconds = float(os.environ.get("BENCH_LATENCY_S", "40"))
        lat_runs = int(os.environ.get("BENCH_LATENCY_RUNS", "3"))
        lat = measure_runs(bootstrap, rate, seconds, LATENESS_MS, lat_runs)
        print("  the same with windows and alarms in one process ...", flush=True)
        lat_one = measure_runs(bootstrap, rate, seconds, LATENESS_MS, lat_runs, apart=False)
    print("memory, 100 k devices x 10 metrics open ...", flush=True)
    mem = memory()
    rates = one["readings_per_s"]
    result = {
        "millrace_readings_per_s": round(rates["millrace"]),
        "ceiling_readings_per_s": round(rates["ceiling"]),
        "quix_readings_per_s": round(rates["quix"]),
        "millrace_vs_quix": round(one["millrace_vs_quix"], 2),
        "millrace_vs_ceiling": round(one["millrace_vs_ceiling"], 3),
        "millrace_vs_ceiling_paired": one["millrace_vs_ceiling_paired"],
        "raw_drain_readings_per_s": round(rates["raw_drain"]),
        "millrace_vs_raw_drain": round(one["millrace_vs_raw_drain"], 3),
        "window_emit_delay_p50_ms": lat["window_emit_delay_p50_ms"],
        "window_emit_delay_p99_ms": lat["window_emit_delay_p99_ms"],
        "window_emit_delay_since_close_p50_ms": lat.get("window_emit_delay_since_close_p50_ms"),
        "window_emit_delay_since_close_p99_ms": lat.get("window_emit_delay_since_close_p99_ms"),
        "alarm_latency_p50_ms": lat["alarm_latency_p50_ms"],
        "alarm_latency_p99_ms": lat["alarm_latency_p99_ms"],
        "rss_mib_100k_devices": mem["rss_mib"],
        "backfill_readings_per_s": backfill["backfill_readings_per_s"],
        "backfill_vs_live": backfill["backfill_vs_live"],
        "backfill_exact": backfill["backfill_exact"],
        "sparse_readings_per_s": sparse["sparse_readings_per_s"],
        "sparse_vs_quix": sparse["sparse_vs_quix"],
        "sparse_peak_rss_mib": sparse["sparse_peak_rss_mib"],
        "targets": {
            "millrace_vs_quix": ">= 10",
            "millrace_vs_ceiling": ">= 0.6",
            "window_emit_delay_p99_ms": "<= 250",
            # The same goal with a clock per device, from the reading that closed the window
            # (bench/telemetry/latency.py): the delay from the deadline holds the wait for
            # each device's next reading, 0.55 s at this rate.
            "window_emit_delay_since_close_p99_ms": "<= 250",
            "alarm_latency_p99_ms": "<= 50",
            "rss_mib_100k_devices": "<= 1024",
            "backfill_vs_live": ">= 0.9",
            "sparse_vs_quix": ">= 10",
            "sparse_peak_rss_mib": "<= 512",
        },
        "backfill": backfill,
        "sparse": sparse,
        "one_reading_per_message": one,
        "ten_readings_per_message": ten,
        "latency": lat,
        "latency_one_process": lat_one,
        "memory": mem,
        "check": check,
        "settings": {
            "windows": "10s,60s",
            "allowed_lateness_ms": LATENESS_MS,
            "commit_interval_ms": {
                "millrace": 1000,
                "ceiling": 1000,
                "raw_drain": 1000,
                "quix": 5000,
            },
            "max_poll_records": 5000,
            "rounds": runs,
            "quix_rounds": quix_runs,
        },
        "workload": {
            "single": single.describe(),
            "batched": batched.describe(),
            "check": check_w.describe(),
        },
        "versions": versions(),
        "command": "make bench-telemetry",
        "duration_s": round(time.time() - started),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x > 100 else f"{x:.3g}"


def print_summary(r: dict[str, Any]) -> None:
    ten = r["ten_readings_per_message"]
    per = ten["readings_per_s"]
    rows = [
        ("ceiling (aiokafka + decode)", r["ceiling_readings_per_s"], per["ceiling"]),
        ("millrace aggregator", r["millrace_readings_per_s"], per["millrace"]),
        ("quix streams", r["quix_readings_per_s"], per["quix"]),
        ("millrace / quix", r["millrace_vs_quix"], ten["millrace_vs_quix"]),
        ("millrace / ceiling", r["millrace_vs_ceiling"], ten["millrace_vs_ceiling"]),
        (
            "  median of per-round ratios",
            r["millrace_vs_ceiling_paired"],
            ten["millrace_vs_ceiling_paired"],
        ),
        ("raw drain (for information)", r["raw_drain_readings_per_s"], per["raw_drain"]),
        ("millrace / raw drain", r["millrace_vs_raw_drain"], ten["millrace_vs_raw_drain"]),
    ]
    print(f"\n{'readings/s':30s} {'1 reading/msg':>16s} {'10 readings/msg':>16s}")
    for name, a, b in rows:
        print(f"{name:30s} {_fmt(a):>16s} {_fmt(b):>16s}")
    emit = f"{r['window_emit_delay_p50_ms']} / {r['window_emit_delay_p99_ms']}"
    alarm = f"{r['alarm_latency_p50_ms']} / {r['alarm_latency_p99_ms']}"
    print(f"{'window emit delay p50/p99 ms':30s} {emit:>16s}")
    since = (
        r.get("window_emit_delay_since_close_p50_ms"),
        r.get("window_emit_delay_since_close_p99_ms"),
    )
    if None not in since:
        print(f"{'  since the closing reading':30s} {f'{since[0]} / {since[1]}':>16s}")
    print(f"{'alarm latency p50/p99 ms':30s} {alarm:>16s}")
    one = r["latency_one_process"]
    emit = f"{one['window_emit_delay_p50_ms']} / {one['window_emit_delay_p99_ms']}"
    alarm = f"{one['alarm_latency_p50_ms']} / {one['alarm_latency_p99_ms']}"
    print(f"{'  in one process: emit':30s} {emit:>16s}")
    print(f"{'  in one process: alarm':30s} {alarm:>16s}")
    for label, key in (("apart", "latency"), ("one", "latency_one_process")):
        lat = r[key]
        since = (
            lat.get("alarm_latency_since_arrival_p50_ms"),
            lat.get("alarm_latency_since_arrival_p99_ms"),
        )
        if None not in since:
            text = f"{since[0]} / {since[1]}"
            print(f"{f'  alarm since arrival, {label}':30s} {text:>16s}")
    busy = [r[k].get("machine_cpu_busy_share") for k in ("latency", "latency_one_process")]
    if None not in busy:
        shares = " / ".join(f"{100 * b:.0f} %" for b in busy)
        print(f"{'  machine busy, apart / one':30s} {shares:>16s}")
    print(f"{'RSS 100k devices x 10 metrics':30s} {r['rss_mib_100k_devices']:>12} MiB")
    print(f"results: {RESULTS.relative_to(ROOT)} ({r['duration_s']} s)")


if __name__ == "__main__":
    main()
