"""The rules file of the telemetry service and what it compiles to.

A rule is a condition over a device's readings, evaluated in event time, plus which devices it
applies to (a selector by device type or id). Conditions are trees of one-metric comparisons
(threshold, range, rate of change, absence, each optionally held for a duration) joined by
AND/OR; between two readings a metric's last value holds, so every condition answers "since
when has it held?" from the readings alone (:mod:`.conditions`). The file's declarative form is
validated strictly, unknown keys refused (:mod:`.spec`), and the whole file becomes one
:class:`~.book.RuleBook` at start (:mod:`.book`).

There are two kinds of rule, and they differ in what a device gets from them:

- an **alarm rule** (:mod:`.alarm`) is a raise condition, an optional clear condition
  (hysteresis) and a severity; every matching device has its own alarm per rule, raised and
  cleared (``services.telemetry.alarms``);
- a **machine-state rule** (:mod:`.state`) is an ordered list of (state, condition), the first
  that holds wins, ``otherwise`` when none does, and DOWN after a silence; a machine has one
  state, from the first rule that matches it (``services.telemetry.states``).

This package is only the language: it imports nothing else of the service. Alarms and machine
states depend on it and not on each other; the engine that runs both over a partition
(``services.telemetry.engine``) depends on all three.
"""
