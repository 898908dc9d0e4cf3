"""Event-time windows: pure window arithmetic, watermarks and the safe commit offset. No I/O.

One lifecycle of a window, from its first reading to the commit that passes it::

     first reading         watermark >= end                seal()
    ───────────────▶ open ──────────────────▶ ended ─────────────────▶ sealed
                                               ▲ ◀── a late reading ──── │
                                               │     voids the seal      │
                                               └───────────┬─────────────┘
                                                           │ watermark >= deadline
                                                           ▼ (end + allowed lateness)
                                                          due
                                                           │ emit(), or emit_sealed()
                                                           ▼ for a deadline sealed whole
                                                        emitted
                                                           │ retire()
                                                           ▼
                                                        retired

- **open**: it takes the readings of its range (``add_records``); the watermark, the greatest
  event time seen (a device's clock; the log clock while a device is quiet, the wall clock
  while a partition is: see ``device_clocks.py``), is before its end.
- **ended**: the watermark passed its end, but late readings still reach it until its
  deadline. Once the watermark is ``delay_ms`` past its end (half the lateness in the
  aggregator), ``seal`` may make its record ahead, paced over the rest of the lateness.
- **sealed**: its record is made; a reading that still reaches it voids the seal (ended again).
- **due**: the watermark reached its deadline: closed, every later reading for it is *late*
  (counted, and with a clock per device sent to the late topic; never added). Decided by the
  watermark alone, never by what the close has done yet, so a replay with other poll
  boundaries decides the same.
- **emitted**: ``emit`` made its record (or ``emit_sealed`` found the deadline's seals
  unchanged). It still holds back the safe offset.
- **retired**: ``retire`` took it off its series and its deadline's list: gone.

*Closed* is due or emitted (``has_closed``): a partition with a closed window commits nothing,
since a replay would judge its readings late and lose them. The **safe offset** is the first
offset of the oldest window not yet retired (the next offset when there is none): every reading
below it belongs to retired windows only, so a replay from there rebuilds every window that is
not retired from exactly its readings (docs/decisions/0002-window-recovery.md).

Predicates name the state they ask about: ``has_due``, ``has_emitted``, ``has_closed``,
``has_due_at(watermark)``; ``sealed_ahead`` counts the sealed windows.

Modules: ``stats.py`` (a window's statistics, exact), ``model.py`` (what the windows take in and
give out), ``partition.py`` (:class:`~services.telemetry.windows.partition.PartitionWindows`,
the windows of one stream: its state and the hot loop), with its parts ``series.py`` (the
index of open windows by series and by deadline), ``adding.py`` (the general path of a
reading), ``ledger.py`` (sealing ahead) and ``closing.py`` (emit, retire, the safe offset).
With a clock per device (the default), ``devices.py``
(:class:`~services.telemetry.windows.devices.DeviceWindows`) gives each device of a partition a
``PartitionWindows`` of its own, whose watermark is that device's clock, and adds each record on
its device's clock; ``device_clocks.py`` moves the clocks besides (the floor, the idle clock of
a device, the shut of a quiet partition) and checkpoints them; ``device_closing.py`` takes every
step above device by device; ``clocks.py`` is what the commit records of those clocks and how a
new owner reads them back.
"""
