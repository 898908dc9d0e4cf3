"""Every file ``make contracts`` generates, rendered in memory.

One function returns them all so that generating (write them) and checking for drift (compare
them with what is committed) can never disagree about what the models produce.
"""

from __future__ import annotations

from contracts import asyncapi, schemagen, strimzi


def generated_files() -> dict[str, str]:
    """Repository-relative path -> exact content of every generated file."""
    return {
        **schemagen.schema_files(),
        asyncapi.ASYNCAPI_PATH: asyncapi.render(),
        strimzi.TOPICS_PATH: strimzi.render(),
    }
