"""Safe client defaults are not optional."""

from __future__ import annotations

from typing import Any

import pytest

from shared import kafka
from shared.kafka import make_consumer, producer_config
from shared.settings import ServiceSettings


def test_producer_is_idempotent_bounded_and_compressed() -> None:
    cfg = producer_config(ServiceSettings(kafka_send_timeout_ms=7_000))
    assert cfg["enable_idempotence"] is True
    assert cfg["acks"] == "all"
    assert cfg["request_timeout_ms"] == 7_000
    assert cfg["compression_type"] == "zstd"


def test_consumer_never_auto_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the consumer is made with (aiokafka's consumer has no public attribute that tells).
    made: dict[str, Any] = {}
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", lambda *topics, **config: made.update(config))
    make_consumer(ServiceSettings(), "telemetry.readings.v1", group_id="g")
    assert made["enable_auto_commit"] is False


def test_sasl_settings_reach_the_clients() -> None:
    settings = ServiceSettings(
        kafka_bootstrap="kafka.plant.example:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="telemetry",
        kafka_sasl_password="pw",
    )
    cfg = producer_config(settings)
    assert cfg["security_protocol"] == "SASL_SSL"
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_password"] == "pw"
    assert cfg["ssl_context"] is not None
