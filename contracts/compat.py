"""Backward-compatibility rules for JSON Schemas within one major version (docs/architecture.md).

A consumer built against the new schema must read data written against the old one, and the
consumers still on the old schema must keep reading what new producers write. So within a major
version a contract may only gain optional fields (tolerant readers ignore them); removing,
renaming (a removal plus an addition) or retyping a field, making a field required, adding a
required field, narrowing an enum and tightening a constraint are all breaking.

:func:`breaking_changes` is pure: two schema dicts in, human-readable violations out, each
naming the JSON path of the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]

# keyword -> True when a larger value is stricter (a lower bound), False for an upper bound
_BOUNDS: dict[str, bool] = {
    "minimum": True,
    "exclusiveMinimum": True,
    "minLength": True,
    "minItems": True,
    "minProperties": True,
    "maximum": False,
    "exclusiveMaximum": False,
    "maxLength": False,
    "maxItems": False,
    "maxProperties": False,
}
_EXACT = ("pattern", "format", "const", "multipleOf", "contentEncoding", "contentMediaType")
_BRANCHES = ("anyOf", "oneOf")


@dataclass(frozen=True)
class _At:
    """A schema node together with its document root and the ``$ref``s followed to reach it."""

    root: Schema
    node: Schema
    seen: frozenset[str] = frozenset()

    def resolved(self) -> _At:
        """Follow ``$ref`` chains, keeping sibling keywords (2020-12 allows them)."""
        node, seen = self.node, self.seen
        while "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise ValueError(f"only local $ref is supported, got {ref!r}")
            if ref in seen:
                return _At(self.root, {}, seen)
            seen = seen | {ref}
            target: Any = self.root
            for part in ref.lstrip("#").split("/")[1:]:
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _At(self.root, node, seen)

    def child(self, node: Schema) -> _At:
        return _At(self.root, node, self.seen).resolved()

    def branches(self) -> list[_At]:
        """Flatten ``anyOf``/``oneOf`` (and a list-valued ``type``) into resolved alternatives."""
        for key in _BRANCHES:
            if key in self.node:
                return [alt for b in self.node[key] for alt in self.child(b).branches()]
        kind = self.node.get("type")
        if isinstance(kind, list):
            return [_At(self.root, {**self.node, "type": t}, self.seen) for t in kind]
        return [self]

    @property
    def kind(self) -> str:
        node = self.node
        kind = node.get("type")
        if isinstance(kind, str):
            return kind
        if "properties" in node:
            return "object"
        if "items" in node or "prefixItems" in node:
            return "array"
        values = node.get("enum", [node["const"]] if "const" in node else None)
        if values:
            return "|".join(sorted({_json_type(v) for v in values}))
        return "any"


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way ``new`` breaks consumers or producers of ``old``; empty when compatible."""
    return list(_compare(_At(old, old).resolved(), _At(new, new).resolved(), "$"))


def _compare(old: _At, new: _At, path: str) -> Iterator[str]:
    old_alts, new_alts = old.branches(), new.branches()
    old_types = frozenset(alt.kind for alt in old_alts)
    new_types = frozenset(alt.kind for alt in new_alts)
    if old_types != new_types:
        yield f"{path}: type changed from {_fmt(old_types)} to {_fmt(new_types)}"
        return
    if len(old_alts) > 1 or len(new_alts) > 1:
        new_by_kind = {alt.kind: alt for alt in new_alts}
        for alt in old_alts:
            yield from _compare(alt, new_by_kind[alt.kind], path)
        return
    yield from _constraints(old.node, new.node, path)
    if "object" in old_types:
        yield from _objects(old, new, path)
    if "array" in old_types:
        yield from _arrays(old, new, path)


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    return names.get(type(value), "object" if isinstance(value, dict) else "array")


def _fmt(types: frozenset[str]) -> str:
    return " | ".join(sorted(types))


def _constraints(old: Schema, new: Schema, path: str) -> Iterator[str]:
    for key, lower in _BOUNDS.items():
        if key not in new:
            continue
        if key not in old:
            yield f"{path}: constraint {key}={new[key]!r} added"
        elif (new[key] > old[key]) if lower else (new[key] < old[key]):
            yield f"{path}: constraint {key} tightened from {old[key]!r} to {new[key]!r}"
    for key in _EXACT:
        if key in new and old.get(key) != new[key]:
            before = f"{old[key]!r}" if key in old else "unset"
            yield f"{path}: {key} changed from {before} to {new[key]!r}"
    if "enum" in new:
        if "enum" not in old:
            yield f"{path}: enum {new['enum']!r} added (narrows the allowed values)"
        else:
            dropped = [v for v in old["enum"] if v not in new["enum"]]
            if dropped:
                yield f"{path}: enum narrowed, values removed: {dropped!r}"


def _objects(old: _At, new: _At, path: str) -> Iterator[str]:
    old_props: Mapping[str, Schema] = old.node.get("properties", {})
    new_props: Mapping[str, Schema] = new.node.get("properties", {})
    old_req, new_req = set(old.node.get("required", ())), set(new.node.get("required", ()))
    for name, old_prop in old_props.items():
        where = f"{path}.{name}"
        if name not in new_props:
            yield f"{where}: field removed (a rename is a removal plus an addition)"
            continue
        if name in new_req and name not in old_req:
            yield f"{where}: optional field made required"
        yield from _compare(old.child(old_prop), new.child(new_props[name]), where)
    for name in sorted(new_req - set(old_props)):
        yield f"{path}.{name}: new required field added"
    old_extra = old.node.get("additionalProperties", True)
    new_extra = new.node.get("additionalProperties", True)
    if new_extra is False and old_extra is not False:
        yield f"{path}: additionalProperties set to false (unknown fields now rejected)"
    elif isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
        yield from _compare(old.child(old_extra), new.child(new_extra), f"{path}.*")


def _arrays(old: _At, new: _At, path: str) -> Iterator[str]:
    old_items, new_items = old.node.get("items", {}), new.node.get("items", {})
    if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
        yield from _compare(old.child(old_items), new.child(new_items), f"{path}[*]")
