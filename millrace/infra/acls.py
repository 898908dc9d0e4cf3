"""The Kafka principals and ACLs of the Kustomize base's Strimzi ``KafkaUser`` resources.

Those files are the one place a service's Kafka rights are written down: Strimzi applies
them in Kubernetes, and the local secure broker gets exactly the same bindings from here.
A new ``deploy/k8s/base/<service>/kafkauser.yaml`` is picked up without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from millrace.infra.paths import REPO_ROOT
from millrace.infra.process import InfraError

K8S_BASE = REPO_ROOT / "deploy" / "k8s" / "base"
KAFKAUSER_GLOB = "*/kafkauser.yaml"

# Kafka's wire codes (org.apache.kafka.common.resource / .acl) for Strimzi's spellings.
RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4, "transactionalId": 5}
PATTERN_TYPES = {"literal": 3, "prefix": 4}
OPERATIONS = {
    "All": 2,
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "ClusterAction": 9,
    "DescribeConfigs": 10,
    "AlterConfigs": 11,
    "IdempotentWrite": 12,
}
PERMISSIONS = {"deny": 2, "allow": 3}
CLUSTER_NAME = "kafka-cluster"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ACL in Kafka's terms: a principal may (or may not) do one operation on a resource."""

    principal: str
    resource_type: int
    resource_name: str
    pattern_type: int
    operation: int
    permission: int
    host: str = "*"


@dataclass(frozen=True)
class KafkaUser:
    name: str
    mechanism: str
    acls: frozenset[AclBinding]

    @property
    def principal(self) -> str:
        return f"User:{self.name}"


def kafkauser_files(base: Path = K8S_BASE) -> list[Path]:
    return sorted(base.glob(KAFKAUSER_GLOB))


def load_users(base: Path = K8S_BASE) -> list[KafkaUser]:
    """Every ``KafkaUser`` of the base, in file order; a malformed one raises ``InfraError``."""
    users: list[KafkaUser] = []
    for path in kafkauser_files(base):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "KafkaUser":
                try:
                    users.append(parse_user(doc))
                except (KeyError, TypeError, ValueError) as exc:
                    raise InfraError(
                        f"{path}: unusable KafkaUser: {type(exc).__name__}: {exc}"
                    ) from exc
    if not users:
        raise InfraError(f"no KafkaUser resources under {base}/{KAFKAUSER_GLOB}")
    return users


def parse_user(doc: dict[str, Any]) -> KafkaUser:
    name = str(doc["metadata"]["name"])
    spec = doc["spec"]
    mechanism = str(spec["authentication"]["type"])
    if mechanism != "scram-sha-512":
        raise ValueError(f"authentication {mechanism!r}; the local broker has SCRAM-SHA-512 only")
    authorization = spec.get("authorization") or {}
    if authorization and authorization.get("type") != "simple":
        raise ValueError(f"authorization type {authorization.get('type')!r} is not 'simple'")
    principal = f"User:{name}"
    bindings = frozenset(
        binding
        for rule in authorization.get("acls", [])
        for binding in _rule_bindings(principal, rule)
    )
    return KafkaUser(name, "SCRAM-SHA-512", bindings)


def _rule_bindings(principal: str, rule: dict[str, Any]) -> list[AclBinding]:
    resource = rule["resource"]
    kind = str(resource["type"])
    name = CLUSTER_NAME if kind == "cluster" else str(resource["name"])
    pattern = str(resource.get("patternType", "literal"))
    operations = rule.get("operations") or [rule["operation"]]
    return [
        AclBinding(
            principal=principal,
            resource_type=_code(RESOURCE_TYPES, kind, "resource type"),
            resource_name=name,
            pattern_type=_code(PATTERN_TYPES, pattern, "patternType"),
            operation=_code(OPERATIONS, str(op), "operation"),
            permission=_code(PERMISSIONS, str(rule.get("type", "allow")), "type"),
            host=str(rule.get("host", "*")),
        )
        for op in operations
    ]


def _code(table: dict[str, int], key: str, what: str) -> int:
    if key not in table:
        raise ValueError(f"unknown {what} {key!r} (known: {', '.join(table)})")
    return table[key]


def all_bindings(users: list[KafkaUser]) -> frozenset[AclBinding]:
    return frozenset(b for user in users for b in user.acls)
