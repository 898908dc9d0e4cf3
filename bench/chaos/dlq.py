"""The dead-letter invariant: every DLQ holds exactly the poison the run injected, found by the
provenance headers (source topic, partition, offset), and each poison record was dead-lettered
by every service that consumes its topic."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.chaos.records import Rec, Verdict

Source = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class Poison:
    topic: str
    partition: int
    offset: int
    kind: str

    @property
    def source(self) -> Source:
        return (self.topic, self.partition, self.offset)


def check_dlq(
    injected: Iterable[Poison], dead: Iterable[Rec], consumers: Mapping[str, frozenset[str]]
) -> Verdict:
    """``consumers``: source topic -> the services expected to dead-letter its poison."""
    v = Verdict("dlq_exactly_poison")
    poison = {p.source: p for p in injected}
    seen: dict[tuple[Source, str], int] = {}
    for rec in dead:
        try:
            source = (
                rec.header("dlq_source_topic"),
                int(rec.header("dlq_source_partition")),
                int(rec.header("dlq_source_offset")),
            )
        except ValueError:
            v.fail(f"{rec.topic} {rec.partition}@{rec.offset}: no provenance headers")
            continue
        if source not in poison:
            reason = rec.header("dlq_reason")
            v.fail(f"{rec.topic}: {source} is not injected poison ({reason}: "
                   f"{rec.header('dlq_error')[:200]})")  # fmt: skip
            continue
        if rec.topic != f"{source[0]}.dlq":
            v.fail(f"{source} dead-lettered to {rec.topic}")
        key = (source, rec.header("dlq_service"))
        seen[key] = seen.get(key, 0) + 1
    for source, p in poison.items():
        for service in consumers.get(p.topic, frozenset()):
            if (source, service) not in seen:
                v.fail(f"{p.kind} poison {source} not dead-lettered by {service}")
    v.figures = {
        "poison_injected": len(poison),
        "dlq_records": sum(seen.values()),
        "dlq_repeats_same_source": sum(n - 1 for n in seen.values()),
    }
    return v


def check_outboxes(unsent: Mapping[str, int]) -> Verdict:
    """Each service's outbox rows not yet marked sent after the drain: all must be zero."""
    v = Verdict("outboxes_drained")
    for service, n in unsent.items():
        if n:
            v.fail(f"{service}: {n} outbox rows unsent")
    v.figures = {f"{s}_unsent": n for s, n in unsent.items()}
    return v
