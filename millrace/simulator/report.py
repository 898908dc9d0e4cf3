"""Per-run accounting: what each transport delivered and what failed, mirrored to Prometheus.

The Prometheus counters are process-wide; the :class:`Tally` is one run's own, so a test that
runs the simulator twice in one process still gets exact numbers per run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from millrace.simulator.generator import Batch, Message
from millrace.simulator.metrics import MESSAGES_SENT, READINGS_SENT, SEND_ERRORS


@dataclass(frozen=True, slots=True)
class SentBatch:
    """A batch as delivered: by which transport, for which device."""

    transport: str
    device_id: str
    batch: Batch


@dataclass(slots=True)
class Tally:
    """Counts one run's deliveries and errors; keeps the delivered batches when ``record``."""

    record: bool = False
    readings: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    batches: list[SentBatch] = field(default_factory=list)

    def sent(self, transport: str, message: Message) -> None:
        self.readings[transport] += message.size
        self.messages[transport] += 1
        READINGS_SENT.labels(transport).inc(message.size)
        MESSAGES_SENT.labels(transport).inc()
        if self.record:
            self.batches.append(SentBatch(transport, message.device_id, message.batch))

    def error(self, transport: str, reason: str) -> None:
        self.errors[(transport, reason)] += 1
        SEND_ERRORS.labels(transport, reason).inc()


@dataclass(frozen=True, slots=True)
class SimulationReport:
    """The outcome of one run. ``batches`` holds what was delivered when the run recorded it."""

    readings_generated: int
    readings_sent: dict[str, int]
    messages_sent: dict[str, int]
    errors: dict[tuple[str, str], int]
    elapsed_s: float
    batches: list[SentBatch]

    @property
    def total_sent(self) -> int:
        return sum(self.readings_sent.values())

    def summary(self) -> str:
        """A few human lines for the end of a CLI run."""
        rate = self.total_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        lines = [
            f"simulator: {self.total_sent}/{self.readings_generated} readings sent "
            f"in {self.elapsed_s:.1f}s ({rate:.0f}/s)"
        ]
        lines += [
            f"  {t}: {n} readings in {self.messages_sent.get(t, 0)} messages"
            for t, n in sorted(self.readings_sent.items())
        ]
        lines += [f"  error {t}/{reason}: {n}" for (t, reason), n in sorted(self.errors.items())]
        return "\n".join(lines)
