"""A Kafka record as the checkers see it, read with a plain client (no Millrace decoding)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name, b"").decode("utf-8", "replace")

    @property
    def ce_id(self) -> str:
        return self.header("ce_id")


@dataclass
class Verdict:
    """One invariant's outcome: ``ok`` with the figures that were checked and, when it
    failed, the first problems found (capped, the counts are exact)."""

    name: str
    ok: bool = True
    figures: dict[str, int | float | str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def fail(self, problem: str, cap: int = 50) -> None:
        self.ok = False
        self.problem_count += 1
        if len(self.problems) < cap:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "figures": self.figures,
            "problem_count": self.problem_count,
            "problems": self.problems,
        }


def in_order(records: list[Rec]) -> list[Rec]:
    """Per partition in offset order (partitions one after the other)."""
    return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))
