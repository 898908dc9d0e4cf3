"""Kafka as the telemetry hot path uses it, below what aiokafka's public API offers.

- ``record_batch``: Kafka record batches (format v2) of records encoded ahead of their append;
  the format alone, no I/O.
- ``batch_send``: many records to one topic as whole record batches, handed to the producer's
  ``send_batch()`` in a background task.
- ``records``: consumers whose polls return aiokafka's own record objects (``RawRecord``).
- ``internals``: every reach into aiokafka's and prometheus_client's internals, and the check at
  import that the installed versions are the ones they were written for
  (docs/decisions/0013-library-internals.md).
"""
