"""The aggregator: ``telemetry.readings.v1`` in, windows, alarms and late readings out, and a
commit of the offset that is safe to replay from. The loop, in ten lines::

    while not stop:
        poll = consumer.getmany()                 # up to 5 000 records, every partition
        restore(partitions newly assigned)        # restore.py: offset + clock from the commit
        for partition, records in poll:
            decode -> alarm engine -> windows     # readings.py, one pass, no I/O
            dead letters, late readings           # dead_letters.py (failures.py, late.py)
            alarms and machine states             # engine/, sent before the next partition
        quiet partitions: the idle clock          # their windows close by the wall clock
        emit slice, then seal slice               # scheduler.py: due windows into batches
        commit when due                           # commit.py, metadata.py

Modules:

- ``loop.py``: the :class:`~services.telemetry.aggregator.loop.Aggregator` facade (``run``,
  ``process``, ``commit``) and the order of a poll;
- ``readings.py``: the per-reading hot path (decode, alarm engine, windows);
- ``partition.py``: what the loop keeps of one partition (windows, engine, idle clock, seals);
- ``scheduler.py``: the emit/seal scheduler and its budgets (how much of a poll closes windows);
- ``commit.py``: when to commit and what (every send acknowledged first);
- ``metadata.py``: the commit-metadata codec (the watermark, or the device clocks' checkpoint);
- ``restore.py``: rebalance (the listener) and restore (device clocks read again);
- ``dead_letters.py``, ``failures.py``, ``late.py``: what leaves the windows aside.

The order of a poll: decode -> windows -> late -> alarms -> emit -> commit. A partition's
records are decoded and added to its windows (the alarm engine observes them on the way), its
late readings and dead letters are queued, its alarms sent; after every partition, the emit
slice closes due windows into record batches and the batches are handed to the producer; a
commit awaits every send before it moves an offset past the records concerned.

No record stops a partition: invalid input and records whose processing raises
(``failures.py``) go to the DLQ and the poll goes on after them. Metrics are counted per poll,
not per reading (docs/decisions/0004-hot-path-decoder.md).

Roles (``MILLRACE_TELEMETRY_ROLE``): ``all`` runs windows, alarms and machine states in this one
loop; ``windows`` leaves alarms out; ``alarms`` keeps no windows (only each partition's
watermark, which quiet-partition deadlines need), emits no aggregates and dead-letters nothing
(the windows role does that for the same records), in a consumer group of its own. See
docs/decisions/0007-alarms-apart.md.
"""
