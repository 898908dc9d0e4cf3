"""The local secure broker's principals and ACLs are the Kustomize base's KafkaUser files, read
with no second list anywhere: every rule of every file, and a new service's file with no code."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from millrace.infra import InfraError
from millrace.infra.acls import (
    K8S_BASE,
    OPERATIONS,
    PATTERN_TYPES,
    RESOURCE_TYPES,
    all_bindings,
    kafkauser_files,
    load_users,
)

Rule = tuple[str, str, str, str, str, str]


def rules_in_files(base: Path) -> set[Rule]:
    """(principal, type, name, patternType, operation, host) straight from the YAML."""
    out: set[Rule] = set()
    for path in sorted(base.glob("*/kafkauser.yaml")):
        doc = yaml.safe_load(path.read_text())
        for acl in doc["spec"]["authorization"]["acls"]:
            res = acl["resource"]
            for op in acl["operations"]:
                principal = f"User:{doc['metadata']['name']}"
                out.add((principal, res["type"], res["name"], res["patternType"], op, acl["host"]))
    return out


def rules_loaded(base: Path) -> set[Rule]:
    """The bindings the broker is given, spelled back in Strimzi's words."""
    names = {
        table_name: {code: word for word, code in table.items()}
        for table_name, table in (
            ("type", RESOURCE_TYPES),
            ("pattern", PATTERN_TYPES),
            ("op", OPERATIONS),
        )
    }
    out: set[Rule] = set()
    for b in all_bindings(load_users(base)):
        assert b.permission == 3  # allow: the base has no deny rules
        out.add(
            (
                b.principal,
                names["type"][b.resource_type],
                b.resource_name,
                names["pattern"][b.pattern_type],
                names["op"][b.operation],
                b.host,
            )
        )
    return out


def test_the_broker_gets_every_rule_of_every_kafkauser_file_and_nothing_else() -> None:
    assert len(kafkauser_files()) >= 2
    expected = rules_in_files(K8S_BASE)
    assert rules_loaded(K8S_BASE) == expected
    principals = {rule[0] for rule in expected}
    assert {"User:millrace-telemetry", "User:millrace-orders"} <= principals
    assert {user.principal for user in load_users()} == principals


def new_service_user(**rule: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {"name": "millrace-newservice"},
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": [rule]},
        },
    }


def copy_of_base(tmp_path: Path) -> Path:
    for path in kafkauser_files():
        target = tmp_path / path.parent.name / path.name
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
    return tmp_path


def test_a_new_services_kafkauser_file_is_picked_up_with_no_code_change(tmp_path: Path) -> None:
    base = copy_of_base(tmp_path)
    rule = {
        "resource": {"type": "topic", "name": "newservice.", "patternType": "prefix"},
        "operations": ["Describe", "Write"],
        "host": "*",
    }
    (base / "newservice").mkdir()
    (base / "newservice" / "kafkauser.yaml").write_text(yaml.safe_dump(new_service_user(**rule)))

    users = {user.name: user for user in load_users(base)}
    assert set(users) == {u.name for u in load_users()} | {"millrace-newservice"}
    assert {
        (b.resource_name, b.pattern_type, b.operation) for b in users["millrace-newservice"].acls
    } == {
        ("newservice.", PATTERN_TYPES["prefix"], OPERATIONS["Describe"]),
        ("newservice.", PATTERN_TYPES["prefix"], OPERATIONS["Write"]),
    }
    assert rules_loaded(base) == rules_in_files(base)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (
            {
                "resource": {"type": "topic", "name": "t", "patternType": "literal"},
                "operations": ["Fly"],
            },
            "unknown operation 'Fly'",
        ),
        (
            {
                "resource": {"type": "topic", "name": "t", "patternType": "re"},
                "operations": ["Read"],
            },
            "unknown patternType 're'",
        ),
        ({"resource": {"type": "topic"}, "operations": ["Read"]}, "KeyError"),
    ],
)
def test_a_rule_the_broker_could_not_enforce_is_refused_naming_its_file(
    tmp_path: Path, rule: dict[str, Any], reason: str
) -> None:
    (tmp_path / "newservice").mkdir()
    path = tmp_path / "newservice" / "kafkauser.yaml"
    path.write_text(yaml.safe_dump(new_service_user(**rule)))
    with pytest.raises(InfraError, match=reason) as refused:
        load_users(tmp_path)
    assert str(path) in str(refused.value)


def test_a_base_without_kafkausers_is_an_error_not_an_open_broker(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="no KafkaUser"):
        load_users(tmp_path)
