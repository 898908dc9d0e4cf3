"""The chaos run (``make chaos``): the plant loop under load on a private Kafka and PostgreSQL
while services are SIGKILLed and the broker and the database restarted, then every invariant
checked from what Kafka and PostgreSQL hold. Results in ``bench/results/chaos.json``.

The checkers (``windows``, ``orders``, ``scheduling``, ``dlq``) are plain functions of what was
read back; the driver, the load and the faults are the only modules doing I/O.
"""
