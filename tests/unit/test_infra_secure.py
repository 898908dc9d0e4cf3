"""The secure local broker's configuration: no unauthenticated way in, and the same security
settings, principals and password file the prod overlay gives the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from millrace.infra.acls import load_users
from millrace.infra.kafka import KafkaConfig, server_properties
from millrace.infra.kafka_secure import (
    ADMIN_USER,
    MECHANISM,
    PASSWORD_FILE,
    SecureLayout,
    format_arguments,
    secure_properties,
)
from millrace.infra.tls import BROKER_CN

PROD = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "overlays" / "prod"


def properties(tmp_path: Path) -> dict[str, str]:
    cfg = KafkaConfig(tmp_path / "kafka", 29092, 29093, secure=True)
    overrides = secure_properties(SecureLayout(cfg.home), cfg.port, cfg.controller_port)
    text = server_properties(cfg, overrides)
    return dict(line.split("=", 1) for line in text.splitlines())


def test_every_listener_authenticates_and_every_request_is_authorized(tmp_path: Path) -> None:
    props = properties(tmp_path)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,SASL_SSL:SASL_SSL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"].split(";") == [f"User:{ADMIN_USER}", f"User:CN={BROKER_CN}"]
    assert "ANONYMOUS" not in props["super.users"]
    assert Path(props["ssl.keystore.location"]).is_file()
    assert props["ssl.keystore.type"] == props["ssl.truststore.type"] == "PEM"


def test_secrets_are_private_and_stable(tmp_path: Path) -> None:
    layout = SecureLayout(tmp_path / "kafka")
    password = layout.password(ADMIN_USER)
    assert layout.password(ADMIN_USER) == password
    assert layout.password("millrace-orders") != password
    assert layout.password_file(ADMIN_USER).stat().st_mode & 0o777 == 0o600
    assert layout.users_dir.stat().st_mode & 0o777 == 0o700
    assert (
        f'password="{password}"'
        in properties(tmp_path)["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    )
    assert format_arguments(layout) == [
        "--add-scram",
        f"SCRAM-SHA-512=[name={ADMIN_USER},password={password}]",
    ]


def prod_literals() -> dict[str, str]:
    doc = yaml.safe_load((PROD / "kustomization.yaml").read_text())
    (generator,) = [g for g in doc["configMapGenerator"] if g["name"] == "millrace-settings"]
    return dict(kv.split("=", 1) for kv in generator["literals"])


def prod_deployments() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(PROD.glob("*-deployment.yaml"))]


def test_the_prod_overlay_uses_the_same_protocol_mechanism_and_ca_file() -> None:
    prod = prod_literals()
    assert prod["MILLRACE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert prod["MILLRACE_KAFKA_SASL_MECHANISM"] == MECHANISM
    assert prod["MILLRACE_KAFKA_SSL_CAFILE"].startswith(prod["MILLRACE_SECRETS_DIR"] + "/")


@pytest.mark.parametrize("deployment", prod_deployments(), ids=lambda d: d["metadata"]["name"])
def test_prod_services_connect_as_a_kafkauser_with_the_same_password_file(
    deployment: dict[str, Any],
) -> None:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MILLRACE_KAFKA_SASL_USERNAME"] in {user.name for user in load_users()}
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    paths = {
        item["path"]
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    assert PASSWORD_FILE in paths
