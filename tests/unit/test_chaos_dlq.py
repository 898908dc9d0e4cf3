"""The chaos run's dead-letter and outbox checkers on small hand-made inputs."""

from __future__ import annotations

from bench.chaos.dlq import Poison, check_dlq, check_outboxes
from bench.chaos.records import Rec

READINGS = "telemetry.readings.v1"
DONE = "production.operation-completed.v1"
CONSUMERS = {READINGS: frozenset({"telemetry"}), DONE: frozenset({"orders", "scheduling"})}
POISON = [Poison(READINGS, 3, 17, "undecodable"), Poison(DONE, 0, 4, "schema")]


def dead(source: str, partition: int, offset: int, service: str, n: int = 0) -> Rec:
    headers = {
        "dlq_source_topic": source.encode(),
        "dlq_source_partition": str(partition).encode(),
        "dlq_source_offset": str(offset).encode(),
        "dlq_service": service.encode(),
        "dlq_reason": b"schema_invalid",
    }
    return Rec(f"{source}.dlq", 0, n, None, b"x", headers)


def test_exactly_the_poison_by_every_consumer_passes_with_repeats_counted() -> None:
    recs = [
        dead(READINGS, 3, 17, "telemetry"),
        dead(READINGS, 3, 17, "telemetry", 1),
        dead(DONE, 0, 4, "orders"),
        dead(DONE, 0, 4, "scheduling", 1),
    ]
    v = check_dlq(POISON, recs, CONSUMERS)
    assert v.ok, v.problems
    assert v.figures == {"poison_injected": 2, "dlq_records": 4, "dlq_repeats_same_source": 1}


def test_good_data_in_a_dlq_and_poison_a_consumer_missed_fail() -> None:
    recs = [dead(READINGS, 3, 17, "telemetry"), dead(READINGS, 3, 18, "telemetry", 1),
            dead(DONE, 0, 4, "orders")]  # fmt: skip
    problems = "\n".join(check_dlq(POISON, recs, CONSUMERS).problems)
    assert "('telemetry.readings.v1', 3, 18) is not injected poison" in problems
    assert "schema poison ('production.operation-completed.v1', 0, 4) not dead-lettered by " \
        "scheduling" in problems  # fmt: skip


def test_a_record_without_provenance_fails() -> None:
    v = check_dlq(POISON, [Rec("x.dlq", 0, 0, None, b"x")], CONSUMERS)
    assert not v.ok
    assert "no provenance headers" in v.problems[0]


def test_outboxes_must_be_empty() -> None:
    assert check_outboxes({"orders": 0, "scheduling": 0}).ok
    v = check_outboxes({"orders": 2, "scheduling": 0})
    assert v.problems == ["orders: 2 outbox rows unsent"]
