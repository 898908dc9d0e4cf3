"""The AsyncAPI document describes the whole catalogue with CloudEvents headers."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from contracts.asyncapi import ASYNCAPI_PATH
from contracts.envelope import ce_type_for
from contracts.manifest import TOPICS

ROOT = Path(__file__).resolve().parents[2]
CE_HEADERS = {
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_dataschema",
    "content-type",
    "traceparent",
}


def load() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / ASYNCAPI_PATH).read_text(encoding="utf-8"))
    return doc


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def header_names(doc: dict[str, Any], headers: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for part in headers.get("allOf", [headers]):
        names |= set(resolve(doc, part).get("properties", {}))
    return names


def test_document_header() -> None:
    doc = load()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Millrace"
    assert doc["info"]["version"] == version("millrace")
    assert doc["servers"]["local"] == {
        "host": "127.0.0.1:19092",
        "protocol": "kafka",
        "description": doc["servers"]["local"]["description"],
    }


def test_one_channel_per_manifest_topic() -> None:
    doc = load()
    addresses = [c["address"] for c in doc["channels"].values()]
    assert sorted(addresses) == sorted(t.name for t in TOPICS)


def test_every_channel_has_a_message_with_cloudevents_headers_and_key() -> None:
    doc = load()
    for channel in doc["channels"].values():
        messages = channel["messages"]
        assert messages
        for message in messages.values():
            assert header_names(doc, message["headers"]) >= CE_HEADERS
            assert message["name"] == ce_type_for(channel["address"])
            assert message["bindings"]["kafka"]["key"]["type"] == "string"
            assert "payload" in message


def test_payload_references_committed_schema_or_is_pending() -> None:
    doc = load()
    channels = {c["address"]: c for c in doc["channels"].values()}
    for spec in TOPICS:
        payload = channels[spec.name]["messages"]["event"]["payload"]
        if spec.contract is None:
            assert payload["type"] == "object"
            assert "pending" in payload["description"]
        else:
            ref = payload["$ref"]
            assert (ROOT / ASYNCAPI_PATH).parent.joinpath(ref).resolve().is_file()


def test_every_topic_has_a_send_operation_on_its_channel() -> None:
    doc = load()
    sent = set()
    for operation in doc["operations"].values():
        assert operation["action"] == "send"
        channel = resolve(doc, operation["channel"])
        sent.add(channel["address"])
        for message in operation["messages"]:
            assert resolve(doc, message) in channel["messages"].values()
    assert sent == {t.name for t in TOPICS}
