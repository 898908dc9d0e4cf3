"""The committed generated files are exactly what the models generate (no drift)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from contracts import strimzi
from contracts.artifacts import generated_files
from contracts.envelope import schema_id_for
from contracts.manifest import TOPICS
from contracts.schemagen import DRAFT, schema_path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_files_match_the_models() -> None:
    for rel, content in generated_files().items():
        committed = (ROOT / rel).read_text(encoding="utf-8")
        assert committed == content, f"{rel} drifted from the models: run `make contracts`"


def test_every_contract_has_a_schema_with_its_id_and_draft() -> None:
    contracted = [t for t in TOPICS if t.contract is not None]
    assert contracted
    for spec in contracted:
        text = (ROOT / schema_path(spec.name)).read_text(encoding="utf-8")
        schema = json.loads(text)
        assert schema["$id"] == schema_id_for(spec.name)
        assert schema["$schema"] == DRAFT
        assert text.endswith("}\n")
        assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_no_schema_for_topics_without_contract() -> None:
    names = {p.name for p in (ROOT / "contracts/schemas").glob("*.json")}
    assert names == {f"{t.name}.json" for t in TOPICS if t.contract is not None}


def test_kafka_topics_cover_every_topic_and_dlq() -> None:
    docs = list(yaml.safe_load_all((ROOT / strimzi.TOPICS_PATH).read_text(encoding="utf-8")))
    by_name = {d["metadata"]["name"]: d for d in docs}
    assert len(docs) == len(by_name) == 2 * len(TOPICS)
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert doc["kind"] == "KafkaTopic"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "millrace"
        assert doc["spec"]["replicas"] == 3
        assert doc["spec"]["topicName"] == doc["metadata"]["name"]
    for spec in TOPICS:
        topic = by_name[spec.name]["spec"]
        assert topic["partitions"] == spec.partitions
        assert spec.config().items() <= topic["config"].items()
        dlq = by_name[spec.dlq]["spec"]
        assert dlq["config"]["cleanup.policy"] == "delete"
