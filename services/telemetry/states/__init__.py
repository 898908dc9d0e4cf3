"""Machine states (RUNNING / IDLE / DOWN / MAINTENANCE) derived from telemetry: a state rule
bound to a machine (:mod:`.instance`) and its events (:mod:`.emit`).

The rules themselves are in ``services.telemetry.rules``; the engine that evaluates alarms and
machine states together, per partition, is ``services.telemetry.engine``.
"""
