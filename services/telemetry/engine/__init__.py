"""The engine that runs a rule book over the readings of the partitions a process owns.

Alarms and machine states are evaluated by one engine per partition (:mod:`.partition`), not one
each, because they share everything but the decision: a device binds its rules on its first
reading, readings reach every rule that reads their metric through one index, deadlines of both
kinds sit in one heap, and one snapshot (:mod:`.store`) covers both before the commit. That is
why this package sits above ``alarms`` and ``states`` (which import only ``rules``) rather than
inside either. :mod:`.monitor` is the I/O side: the aggregator's observer that feeds the
engines, publishes their events and snapshots them within its poll/commit cycle.
"""
