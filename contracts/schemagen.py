"""JSON Schemas of the contracts, as committed under ``contracts/schemas/``.

The committed schema is what other plant systems code against, and what ``millrace contracts
check`` diffs against ``main`` for compatibility; so it is rendered byte-for-byte
deterministically (sorted keys, two-space indent, trailing newline) from the pydantic model.
"""

from __future__ import annotations

import json
from typing import Any

from contracts.base import Contract
from contracts.envelope import schema_id_for
from contracts.manifest import TOPICS, TopicSpec

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR = "contracts/schemas"


def schema_for(topic: str, model: type[Contract]) -> dict[str, Any]:
    """The validation-mode JSON Schema of ``model``, identified as ``topic``'s ``ce_dataschema``.

    Validation mode describes what a consumer accepts, which is what compatibility is about.
    """
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT, "$id": schema_id_for(topic), **schema}


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(topic: str) -> str:
    """Repository-relative path of a topic's committed schema."""
    return f"{SCHEMA_DIR}/{topic}.json"


def contracted(topics: tuple[TopicSpec, ...] = TOPICS) -> list[tuple[TopicSpec, type[Contract]]]:
    """The topics whose contract model exists already."""
    return [(t, t.contract) for t in topics if t.contract is not None]


def schema_files(topics: tuple[TopicSpec, ...] = TOPICS) -> dict[str, str]:
    """Repository-relative path -> content of every schema file."""
    return {
        schema_path(spec.name): render_json(schema_for(spec.name, model))
        for spec, model in contracted(topics)
    }
