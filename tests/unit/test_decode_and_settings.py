"""Hot-path decoding reasons, and settings that fail closed."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.telemetry.decode import decode_readings
from services.telemetry.settings import TelemetrySettings
from shared.dlq import InvalidMessageError
from shared.settings import ServiceSettings

NOW = 1_732_262_400_000


def rec(**over: object) -> bytes:
    body: dict[str, object] = {
        "device_id": "press-07",
        "readings": [{"metric": "spindle_temp_c", "ts": NOW, "value": 71.5}],
    }
    body.update(over)
    return orjson.dumps(body)


def reason(value: bytes | None, key: bytes | None = b"press-07") -> str:
    with pytest.raises(InvalidMessageError) as err:
        decode_readings(value, key, NOW, 60_000)
    return err.value.reason


def test_valid_record_decodes_with_default_quality() -> None:
    batch = decode_readings(rec(), b"press-07", NOW, 60_000)
    assert batch.readings[0].quality == "good"
    assert decode_readings(rec(), None, NOW, 60_000).device_id == "press-07"


def test_unknown_fields_are_ignored_by_the_tolerant_reader() -> None:
    assert decode_readings(rec(firmware="1.2"), b"press-07", NOW, 60_000).device_id == "press-07"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe", "undecodable"),
        (b'{"device_id": "press-07", "readings": [', "undecodable"),
        (
            b'{"device_id":"press-07","readings":[{"metric":"m","ts":1,"value":NaN}]}',
            "schema_invalid",
        ),
        (rec(readings=[{"metric": "m", "ts": NOW, "value": "71"}]), "schema_invalid"),
        (rec(readings=[]), "schema_invalid"),
        (rec(readings=[{"metric": "m", "ts": NOW + 60_001, "value": 1}]), "future_timestamp"),
    ],
)
def test_poison_is_named(value: bytes | None, expected: str) -> None:
    assert reason(value) == expected


def test_key_must_match_device() -> None:
    assert reason(rec(), key=b"press-08") == "key_mismatch"


def test_window_sizes_sorted_and_deduplicated() -> None:
    assert TelemetrySettings(telemetry_windows="60s,10s,10s").window_sizes_ms == (10_000, 60_000)
    with pytest.raises(ValidationError):
        TelemetrySettings(telemetry_windows="50ms")


def test_plaintext_to_remote_broker_is_refused_unless_dev_opt_in() -> None:
    with pytest.raises(ValidationError, match="plaintext"):
        ServiceSettings(kafka_bootstrap="kafka.plant.example:9092")
    ok = ServiceSettings(kafka_bootstrap="kafka:9092", kafka_allow_plaintext=True)
    assert ok.bootstrap_servers == ["kafka:9092"]


def test_prod_requires_sasl_and_ingest_tokens() -> None:
    with pytest.raises(ValidationError, match="SASL_SSL"):
        ServiceSettings(env="prod")
    with pytest.raises(ValidationError, match="USERNAME"):
        ServiceSettings(env="prod", kafka_security_protocol="SASL_SSL")
    digest = hashlib.sha256(b"t").hexdigest()
    sasl: dict[str, Any] = {
        "env": "prod",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "telemetry",
        "kafka_sasl_password": "pw",
    }
    with pytest.raises(ValidationError, match="INGEST_TOKEN"):
        TelemetrySettings(**sasl)
    assert TelemetrySettings(**sasl, telemetry_ingest_token_sha256=[digest]).env == "prod"


def test_auto_create_topics_only_in_dev() -> None:
    with pytest.raises(ValidationError, match="auto-creation"):
        ServiceSettings(
            env="prod",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
            kafka_auto_create_topics=True,
        )


def test_tokens_must_be_digests_never_plain() -> None:
    with pytest.raises(ValidationError, match="SHA-256"):
        TelemetrySettings(telemetry_ingest_token_sha256=["my-plain-token"])


def test_secrets_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILLRACE_KAFKA_SASL_PASSWORD", "from-env")
    s = ServiceSettings()
    assert s.kafka_sasl_password is not None
    assert s.kafka_sasl_password.get_secret_value() == "from-env"
    assert "from-env" not in repr(s)
