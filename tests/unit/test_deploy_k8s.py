"""Kustomize base and overlays, checked without a cluster: every referenced file exists, every
document is a Kubernetes object, selectors line up, the pods run locked down, and the settings
each overlay produces pass the services' fail-closed validation."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.manifest import all_topic_names
from shared.settings import ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [BASE, *OVERLAYS]
TELEMETRY_GROUP = "millrace-telemetry"


def kustomization(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return doc


def referenced_paths(directory: Path) -> list[Path]:
    """Every file or directory a kustomization names: resources, patch files, generator files."""
    k = kustomization(directory)
    names = list(k.get("resources", []))
    names += [p["path"] for p in k.get("patches", []) if "path" in p]
    for generator in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        names += [f.split("=", 1)[-1] for f in generator.get("files", [])]
        names += generator.get("envs", [])
    return [directory / n for n in names]


def base_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in referenced_paths(BASE):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in base_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def service_settings_class() -> type[ServiceSettings]:
    """Telemetry's own settings once they exist; the shared base class until then."""
    try:
        module = importlib.import_module("services.telemetry.settings")
    except ModuleNotFoundError as exc:
        if exc.name not in {"services.telemetry", "services.telemetry.settings"}:
            raise
        return ServiceSettings
    cls: type[ServiceSettings] = module.TelemetrySettings
    return cls


def literals(directory: Path, name: str = "millrace-settings") -> dict[str, str]:
    out: dict[str, str] = {}
    for generator in kustomization(directory).get("configMapGenerator", []):
        if generator["name"] == name:
            out.update(kv.split("=", 1) for kv in generator.get("literals", []))
    return out


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_referenced_file_exists(directory: Path) -> None:
    for path in referenced_paths(directory):
        assert path.exists(), path
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), path


def test_base_includes_the_generated_topics() -> None:
    assert "topics.yaml" in kustomization(BASE)["resources"]


def test_overlays_dev_and_prod_exist() -> None:
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}


@pytest.mark.parametrize("path", sorted(K8S.rglob("*.yaml")), ids=lambda p: str(p.relative_to(K8S)))
def test_every_document_parses_as_a_kubernetes_object(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert doc["apiVersion"]
        assert doc["kind"]
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"]


def test_base_has_the_objects_a_service_needs() -> None:
    kinds = {(d["apiVersion"], d["kind"]) for d in base_documents()}
    assert {
        ("v1", "Namespace"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("kafka.strimzi.io/v1beta2", "KafkaUser"),
    } <= kinds


def test_deployment_probes_use_healthz_and_readyz() -> None:
    (container,) = find("Deployment", "telemetry")["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"] == ["run", "telemetry"]
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_deployment_runs_locked_down() -> None:
    pod = find("Deployment", "telemetry")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


def test_selectors_match_the_deployment() -> None:
    deployment = find("Deployment", "telemetry")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        find("Service", "telemetry")["spec"]["selector"],
        find("PodDisruptionBudget", "telemetry")["spec"]["selector"]["matchLabels"],
        find("NetworkPolicy", "telemetry")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    service_labels = find("Service", "telemetry")["metadata"]["labels"]
    monitor = find("ServiceMonitor", "telemetry")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service_labels.items()
    port_names = {p["name"] for p in find("Service", "telemetry")["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= port_names
    assert {e["path"] for e in monitor["endpoints"]} == {"/metrics"}
    target = find("HorizontalPodAutoscaler", "telemetry")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "telemetry")


def test_kafka_user_is_scram_with_acls_on_telemetry_topics_only() -> None:
    user = find("KafkaUser", "millrace-telemetry")
    topics = [d for d in base_documents() if d["kind"] == "KafkaTopic"]
    assert (
        user["metadata"]["labels"]["strimzi.io/cluster"]
        == (topics[0]["metadata"]["labels"]["strimzi.io/cluster"])
    )
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    acls = user["spec"]["authorization"]["acls"]
    grants = {
        (a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]
    }
    assert ("topic", "telemetry.readings.v1", "Read") in grants
    assert ("group", TELEMETRY_GROUP, "Read") in grants
    for written in (
        "telemetry.aggregates.v1",
        "telemetry.alarms.v1",
        "telemetry.machine-states.v1",
        "telemetry.readings.v1.dlq",
    ):
        assert ("topic", written, "Write") in grants
    known = set(all_topic_names())
    for acl in acls:
        assert acl["resource"]["patternType"] == "literal"
        if acl["resource"]["type"] == "topic":
            assert acl["resource"]["name"] in known
            assert acl["resource"]["name"].startswith("telemetry.")


def test_kafka_user_group_is_the_telemetry_consumer_group() -> None:
    sources = (ROOT / "services" / "telemetry").rglob("*.py")
    assert any(f'"{TELEMETRY_GROUP}"' in path.read_text() for path in sources)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in [k for k in os.environ if k.startswith("MILLRACE_")]:
        monkeypatch.delenv(key)
    return monkeypatch


def test_base_settings_alone_fail_closed(clean_env: pytest.MonkeyPatch) -> None:
    for key, value in literals(BASE).items():
        clean_env.setenv(key, value)
    with pytest.raises(ValueError, match="plaintext"):
        ServiceSettings()


def test_dev_overlay_settings_load(clean_env: pytest.MonkeyPatch) -> None:
    for key, value in {**literals(BASE), **literals(K8S / "overlays" / "dev")}.items():
        clean_env.setenv(key, value)
    settings = service_settings_class()()
    assert settings.env == "dev"
    assert settings.http_host == "0.0.0.0"


def test_prod_overlay_settings_load_with_the_mounted_secrets(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prod = K8S / "overlays" / "prod"
    merged = {**literals(BASE), **literals(prod)}
    patch = yaml.safe_load((prod / "telemetry-deployment.yaml").read_text())
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (volume,) = patch["spec"]["template"]["spec"]["volumes"]
    files = {
        item["path"]
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    secrets_dir = Path(merged["MILLRACE_SECRETS_DIR"])
    assert Path(mount[volume["name"]]) == secrets_dir
    assert Path(merged["MILLRACE_KAFKA_SSL_CAFILE"]).parent == secrets_dir
    settings_files = files - {Path(merged["MILLRACE_KAFKA_SSL_CAFILE"]).name}
    fields = {f"millrace_{name}" for name in service_settings_class().model_fields}
    assert "millrace_kafka_sasl_password" in settings_files
    assert settings_files <= fields, settings_files - fields
    digest = hashlib.sha256(b"ingest-token").hexdigest()
    contents = {
        "millrace_kafka_sasl_password": "from-strimzi",
        "millrace_telemetry_ingest_token_sha256": json.dumps([digest]),
    }
    for name in settings_files:
        (tmp_path / name).write_text(contents[name])
    merged["MILLRACE_SECRETS_DIR"] = str(tmp_path)
    for key, value in merged.items():
        clean_env.setenv(key, value)
    for env in container["env"]:
        clean_env.setenv(env["name"], env["value"])
    settings = load_settings(service_settings_class())
    assert settings.env == "prod"
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_username == "millrace-telemetry"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "from-strimzi"
