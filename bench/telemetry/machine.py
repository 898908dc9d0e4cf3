"""How busy the machine is: a small machine shares its cores among the broker, the load
generator and the aggregator, and latency then says as much about the machine as about
Millrace (used by ``latency.py``)."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` of Linux ``/proc/self/status``, the
    high-water mark of this program's own memory. ``ru_maxrss`` carries the parent's over
    ``execve`` (a worker started by a benchmark that holds the windows it read back reported
    that benchmark's memory), so it is only the fallback where there is no such file."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine so far, in clock ticks (Linux ``/proc/stat``);
    None where there is no such file."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(n) for n in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def own_cpu_s() -> float:
    """User and system CPU seconds of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of all cores busy between two :func:`machine_jiffies` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)
