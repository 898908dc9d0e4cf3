"""The settings each Kustomize overlay hands each service pass its fail-closed validation: the
shared ConfigMap, the Deployment's own env (values, Secret references, overlay patches) and, in
prod, the files mounted into MILLRACE_SECRETS_DIR."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.orders.settings import OrdersSettings
from services.scheduling.settings import SchedulingSettings
from services.telemetry.settings import TelemetrySettings
from shared.settings import ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
DEV = K8S / "overlays" / "dev"
PROD = K8S / "overlays" / "prod"
# Deployment -> its settings class, base manifest and principal (service name, Kafka user).
SETTINGS: dict[str, type[ServiceSettings]] = {
    "telemetry": TelemetrySettings,
    "telemetry-alarms": TelemetrySettings,
    "orders": OrdersSettings,
    "scheduling": SchedulingSettings,
}
MANIFESTS = {
    "telemetry": "telemetry/deployment.yaml",
    "telemetry-alarms": "telemetry/alarms-deployment.yaml",
    "orders": "orders/deployment.yaml",
    "scheduling": "scheduling/deployment.yaml",
}
PRINCIPAL = {
    "telemetry": "telemetry",
    "telemetry-alarms": "telemetry",
    "orders": "orders",
    "scheduling": "scheduling",
}
SECRET_FILES = {
    "millrace_kafka_sasl_password": "from-strimzi",
    "millrace_telemetry_ingest_token_sha256": json.dumps(
        [hashlib.sha256(b"ingest-token").hexdigest()]
    ),
    "millrace_orders_tokens": json.dumps(
        [{"sha256": hashlib.sha256(b"erp-token").hexdigest(), "role": "plant", "name": "erp"}]
    ),
    "millrace_scheduling_tokens": json.dumps(
        [{"sha256": hashlib.sha256(b"mes-token").hexdigest(), "role": "plant", "name": "mes"}]
    ),
}


def kustomization(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return doc


def literals(directory: Path, name: str, key: str = "configMapGenerator") -> dict[str, str]:
    out: dict[str, str] = {}
    for generator in kustomization(directory).get(key, []):
        if generator["name"] == name:
            out.update(kv.split("=", 1) for kv in generator.get("literals", []))
    return out


def base_container(service: str) -> dict[str, Any]:
    doc = yaml.safe_load((BASE / MANIFESTS[service]).read_text())
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    out: dict[str, Any] = container
    return out


def config_file(path: str) -> str:
    """Where a file a base Deployment mounts from a generated ConfigMap lives in the repo."""
    for generator in kustomization(BASE).get("configMapGenerator", []):
        for entry in generator.get("files", []):
            key, _, source = entry.partition("=")
            if path.endswith(f"/{key}"):
                return str(BASE / source)
    return path


def overlay_env(directory: Path, service: str) -> list[dict[str, Any]]:
    """Env entries an overlay's inline JSON patches append to the service's container."""
    out: list[dict[str, Any]] = []
    for patch in kustomization(directory).get("patches", []):
        target = patch.get("target", {})
        if target.get("kind") != "Deployment" or service not in target["name"].split("|"):
            continue
        ops = yaml.safe_load(patch["patch"])
        out.extend(
            op["value"] for op in ops if op["path"] == "/spec/template/spec/containers/0/env/-"
        )
    return out


def container_env(
    service: str, secrets: dict[str, dict[str, str]], extra: list[Any]
) -> dict[str, str]:
    """The env the container starts with: plain values, Secret references resolved from
    ``secrets``, mounted config files mapped to their source; the pod's name is left out."""
    env: dict[str, str] = {}
    for entry in [*base_container(service).get("env", []), *extra]:
        if "value" in entry:
            env[entry["name"]] = config_file(str(entry["value"]))
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secrets[ref["name"]][ref["key"]]
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in [k for k in os.environ if k.startswith("MILLRACE_")]:
        monkeypatch.delenv(key)
    return monkeypatch


def test_base_settings_alone_fail_closed(clean_env: pytest.MonkeyPatch) -> None:
    for key, value in literals(BASE, "millrace-settings").items():
        clean_env.setenv(key, value)
    with pytest.raises(ValueError, match="plaintext"):
        ServiceSettings()


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_dev_overlay_settings_load(service: str, clean_env: pytest.MonkeyPatch) -> None:
    secrets = {
        g["name"]: literals(DEV, g["name"], "secretGenerator")
        for g in kustomization(DEV).get("secretGenerator", [])
    }
    merged = {
        **literals(BASE, "millrace-settings"),
        **literals(DEV, "millrace-settings"),
        **container_env(service, secrets, overlay_env(DEV, service)),
    }
    for key, value in merged.items():
        clean_env.setenv(key, value)
    settings = SETTINGS[service]()
    assert settings.env == "dev"
    assert settings.http_host == "0.0.0.0"
    assert settings.service_name == PRINCIPAL[service]
    if isinstance(settings, OrdersSettings):
        assert settings.http_port == 8081
        assert settings.orders_tokens
        assert settings.database_url is not None
    if isinstance(settings, SchedulingSettings):
        assert settings.http_port == 8082
        assert settings.scheduling_tokens
        assert settings.database_url is not None
        assert settings.scheduling_duration_scale == 1.0  # the demo's clock is not a deployment's
    if isinstance(settings, TelemetrySettings):
        assert settings.telemetry_role == {"telemetry": "windows"}.get(service, "alarms")
        if settings.runs_alarms:
            assert settings.telemetry_alarm_rules is not None
            assert settings.database_url is not None


@pytest.mark.parametrize("service", ["orders", "scheduling"])
def test_dev_tokens_are_the_demo_tokens(service: str) -> None:
    from millrace.demo.orders import tokens_env  # noqa: PLC0415 - only this test needs the demo

    name = f"MILLRACE_{service.upper()}_TOKENS"
    (entry,) = [e for e in overlay_env(DEV, service) if e["name"] == name]
    assert json.loads(entry["value"]) == json.loads(tokens_env())


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_prod_overlay_settings_load_with_the_mounted_secrets(
    service: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    merged = {**literals(BASE, "millrace-settings"), **literals(PROD, "millrace-settings")}
    patch = yaml.safe_load((PROD / f"{service}-deployment.yaml").read_text())
    assert {"path": f"{service}-deployment.yaml"} in kustomization(PROD)["patches"]
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (volume,) = patch["spec"]["template"]["spec"]["volumes"]
    sources = [source["secret"] for source in volume["projected"]["sources"]]
    files = {item["path"] for source in sources for item in source["items"]}
    principal = PRINCIPAL[service]
    assert {
        "name": f"millrace-{principal}",
        "items": [{"key": "password", "path": "millrace_kafka_sasl_password"}],
    } in sources
    secrets_dir = Path(merged["MILLRACE_SECRETS_DIR"])
    assert Path(mount[volume["name"]]) == secrets_dir
    assert Path(merged["MILLRACE_KAFKA_SSL_CAFILE"]).parent == secrets_dir
    settings_files = files - {Path(merged["MILLRACE_KAFKA_SSL_CAFILE"]).name}
    fields = {f"millrace_{name}" for name in SETTINGS[service].model_fields}
    assert settings_files <= fields, settings_files - fields
    for name in settings_files:
        (tmp_path / name).write_text(SECRET_FILES[name])
    merged["MILLRACE_SECRETS_DIR"] = str(tmp_path)
    db = {f"millrace-{principal}-db": {"url": "postgresql://u:p@db.example:5432/millrace"}}
    merged.update(container_env(service, db, container["env"]))
    for key, value in merged.items():
        clean_env.setenv(key, value)
    settings = load_settings(SETTINGS[service])
    assert settings.env == "prod"
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username == f"millrace-{principal}"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "from-strimzi"
