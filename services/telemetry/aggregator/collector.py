"""The garbage collector of a process that runs the consume loop."""

from __future__ import annotations

import gc

# Allocations between young-generation collections (Python's default is 700); see tune_gc().
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Set the garbage collector up for a consuming loop (the process's, once at its start).

    What exists now (modules, clients, settings: tens of thousands of objects) lives as long as
    the process; frozen, full collections no longer walk it, which, with the untracked window
    state, keeps the longest collections (the loop's longest stalls) short. A poll brings up to
    ``telemetry_max_poll_records`` consumer records (5 000), each a tracked object with its own
    tuples, and with Python's default of 700 allocations per young collection every poll paid
    for several collections of objects that die with it: ``GC_YOUNG_THRESHOLD`` allows a few
    polls' worth (docs/decisions/0004-hot-path-decoder.md, "The collector").
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
