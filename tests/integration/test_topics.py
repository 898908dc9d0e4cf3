"""``millrace topics`` on a real broker: every manifest topic and DLQ, right shape, idempotent."""

from __future__ import annotations

import argparse
import time
from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # stubs omit the re-export
    AdminClient,
    ConfigResource,
)

from contracts import strimzi
from contracts.manifest import TOPICS, all_topic_names
from millrace.commands import topics

pytestmark = pytest.mark.integration


def run_topics(capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert topics.run(argparse.Namespace(replication=1)) == 0
    out = capsys.readouterr().out
    return [
        line.removeprefix("created ") for line in out.splitlines() if line.startswith("created ")
    ]


def settled_metadata(admin: AdminClient, names: list[str]) -> dict[str, Any]:
    """Topic metadata once every name is visible: creation reaches metadata a moment later."""
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Any] = admin.list_topics(timeout=30).topics
        if set(names) <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_topics_creates_the_manifest_then_is_a_no_op(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MILLRACE_KAFKA_BOOTSTRAP", kafka_bootstrap)
    wanted = all_topic_names()
    first = run_topics(capsys)
    assert set(first) <= set(wanted)

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = settled_metadata(admin, wanted)
    assert set(wanted) <= set(metadata)
    for spec in TOPICS:
        assert len(metadata[spec.name].partitions) == spec.partitions
        assert len(metadata[spec.dlq].partitions) == 1

    expected = {t.name: t.config() for t in TOPICS} | {t.dlq: strimzi.DLQ_CONFIG for t in TOPICS}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in wanted]
    for resource, future in admin.describe_configs(resources).items():
        configs = future.result(timeout=30)
        for key, value in expected[resource.name].items():
            assert configs[key].value == value, (resource.name, key)

    assert run_topics(capsys) == []
