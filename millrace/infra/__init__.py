"""Local infrastructure without Docker: a real Kafka broker and a real PostgreSQL on 127.0.0.1.

Both run as detached processes whose pid, log and data live under the state directory
(``MILLRACE_STATE_DIR``, default ``<repo>/.run``), so a later ``millrace infra down`` from
another shell can find and stop them.
"""

from millrace.infra.process import InfraError

__all__ = ["InfraError"]
