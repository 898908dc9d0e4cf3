"""Pre-fill a topic and time one system draining it: first record -> committed at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.telemetry.kafka import CommitWatcher, end_offsets, producer, recreate_topic
from bench.telemetry.workload import Workload, marker, messages

ROOT = Path(__file__).resolve().parents[2]


def prefill(bootstrap: str, topic: str, w: Workload) -> dict[int, int]:
    """The workload, then one marker per partition; returns the end offsets."""
    recreate_topic(bootstrap, topic, w.partitions)
    p = producer(bootstrap)
    for key, value in messages(w):
        while True:
            try:
                p.produce(topic, value=value, key=key)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(60)
    for part in range(w.partitions):
        key, value = marker(w, part)
        p.produce(topic, value=value, key=key, partition=part)
    p.flush(60)
    return end_offsets(bootstrap, topic, w.partitions)


@dataclass
class Result:
    kind: str
    seconds: float
    readings_per_s: float
    rss_peak_mib: float


class Worker:
    """A system under test as a child process; samples its RSS while it runs."""

    def __init__(self, kind: str, bootstrap: str, topic: str, group: str, *extra: str) -> None:
        argv = [sys.executable, "-m", "bench.telemetry.workers", kind]
        argv += ["--bootstrap", bootstrap, "--topic", topic, "--group", group, *extra]
        env = {**os.environ, "MILLRACE_LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(os.environ["BENCH_WORKER_STDERR"], "a")  # noqa: SIM115
            if os.environ.get("BENCH_WORKER_STDERR")
            else subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.rss_peak = 0.0
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        ps = psutil.Process(self.proc.pid)
        while self.proc.poll() is None:
            try:
                self.rss_peak = max(self.rss_peak, ps.memory_info().rss / 2**20)
            except psutil.Error:
                return
            time.sleep(0.1)

    def stop(self) -> dict[str, float]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        report: dict[str, float] = json.loads(lines[-1]) if lines else {}
        report["rss_sampled_peak_mib"] = self.rss_peak
        return report


def timed_run(
    kind: str, bootstrap: str, topic: str, w: Workload, ends: dict[int, int], timeout_s: float
) -> Result:
    """Run ``kind`` on the pre-filled topic in a fresh group until its committed offsets
    reach the markers (every data window closed and committed)."""
    group = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    watcher = CommitWatcher(bootstrap, group)
    worker = Worker(kind, bootstrap, topic, group, "--out-topic", f"bench.{kind}.out")
    deadline = time.monotonic() + timeout_s
    done_at = None
    try:
        while time.monotonic() < deadline and worker.proc.poll() is None:
            committed = watcher.committed(topic, w.partitions)
            if all(committed.get(p, -1) >= end - 1 for p, end in ends.items()):
                done_at = time.time()
                break
            time.sleep(0.02)
    finally:
        report = worker.stop()
        watcher.close()
    first = report.get("first_record_at")
    if done_at is None or first is None:
        raise RuntimeError(f"{kind} did not finish within {timeout_s} s: {report}")
    seconds = done_at - first
    rss = max(report.get("rss_peak_mib", 0.0), report["rss_sampled_peak_mib"])
    return Result(kind, seconds, w.readings / seconds, rss)
