"""The chaos run's orders checker on small hand-made histories."""

from __future__ import annotations

from typing import Any

import orjson

from bench.chaos.orders import CANCELLED, CHANGED, PLACED, OrderRow, check_orders, valid_move
from bench.chaos.records import Rec


class Log:
    """Events as the orders topics would hold them, one offset counter per topic."""

    def __init__(self) -> None:
        self.recs: list[Rec] = []

    def add(self, topic: str, ce_id: str, **data: Any) -> None:
        offset = sum(1 for r in self.recs if r.topic == topic)
        self.recs.append(Rec(topic, 0, offset, None, orjson.dumps(data), {"ce_id": ce_id.encode()}))

    def placed(self, order_id: str) -> None:
        self.add(PLACED, f"{order_id}-0", order_id=order_id, status="accepted")

    def change(self, order_id: str, ce_id: str, previous: str, status: str) -> None:
        self.add(CHANGED, ce_id, order_id=order_id, previous=previous, status=status)


def test_valid_moves_of_the_state_machine() -> None:
    assert valid_move("accepted", "scheduled")
    assert valid_move("accepted", "in_production")  # facts may skip a status
    assert valid_move("scheduled", "cancelled")
    assert valid_move("completed", "shipped")
    assert not valid_move("in_production", "cancelled")
    assert not valid_move("scheduled", "accepted")
    assert not valid_move("cancelled", "scheduled")


def test_a_consistent_history_with_a_redelivered_event_passes() -> None:
    log = Log()
    log.placed("o1")
    log.change("o1", "o1-1", "accepted", "scheduled")
    log.change("o1", "o1-1", "accepted", "scheduled")  # redelivered, same content
    log.change("o1", "o1-2", "scheduled", "in_production")
    log.placed("o2")
    log.change("o2", "o2-1", "accepted", "cancelled")
    log.add(CANCELLED, "o2-2", order_id="o2", reason="chaos")
    rows = {"o1": OrderRow("in_production", 3), "o2": OrderRow("cancelled", 3)}
    v = check_orders(rows, log.recs, {"k1": "o1", "k2": "o2"})
    assert v.ok, v.problems
    assert v.figures["events_redelivered"] == 1
    assert v.figures["status_cancelled"] == 1


def test_a_broken_chain_a_wrong_final_status_and_a_missing_event_fail() -> None:
    log = Log()
    log.placed("o1")
    log.change("o1", "o1-1", "scheduled", "in_production")  # previous should be accepted
    v = check_orders({"o1": OrderRow("completed", 3)}, log.recs, {"k1": "o1"})
    problems = "\n".join(v.problems)
    assert "change from scheduled while accepted" in problems
    assert "database says completed" in problems
    assert "2 distinct events, event_seq 3" in problems


def test_http_and_database_must_hold_the_same_orders_once() -> None:
    log = Log()
    log.placed("o1")
    log.placed("o3")
    rows = {"o1": OrderRow("accepted", 1), "o3": OrderRow("accepted", 1)}
    v = check_orders(rows, log.recs, {"k1": "o1", "k2": "o1", "k4": "o4"})
    problems = "\n".join(v.problems)
    assert "o1: returned for two Idempotency-Keys" in problems
    assert "o4: accepted over HTTP but not in the database" in problems
    assert "o3: in the database but never accepted over HTTP" in problems


def test_two_contents_under_one_ce_id_and_events_without_a_row_fail() -> None:
    log = Log()
    log.placed("o1")
    log.change("o1", "o1-1", "accepted", "scheduled")
    log.change("o1", "o1-1", "accepted", "in_production")
    log.placed("ghost")
    v = check_orders({"o1": OrderRow("scheduled", 2)}, log.recs, {"k": "o1"})
    problems = "\n".join(v.problems)
    assert "ce_id o1-1 on orders.order-status-changed.v1 has two contents" in problems
    assert "ghost: events on Kafka but no row" in problems
