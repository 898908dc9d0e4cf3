"""The README stays the truth: every topic of the manifest and every setting is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.manifest import DAY_MS, TOPICS, TopicSpec
from services.telemetry.settings import TelemetrySettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("spec", TOPICS, ids=lambda t: t.name)
def test_every_topic_is_in_the_catalogue_as_declared(spec: TopicSpec) -> None:
    [row] = [line for line in README.splitlines() if line.startswith(f"| `{spec.name}` |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == spec.key
    assert cells[2] == str(spec.partitions)
    if spec.compacted:
        assert cells[3] == "compacted"
    else:
        assert spec.retention_ms is not None
        assert cells[3] == f"{spec.retention_ms // DAY_MS} days"
    assert cells[4] == spec.producer
    assert cells[5] == ", ".join(spec.consumers)
    contract = spec.contract.__name__ if spec.contract else "pending"
    assert cells[6].strip("`") == contract


@pytest.mark.parametrize("field", sorted(TelemetrySettings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"MILLRACE_{field.upper()}" in README


def test_the_two_commands_are_shown() -> None:
    assert "make demo" in README
    assert "make test" in README
    assert "```mermaid" in README
