"""Kustomize base and overlays, checked without a cluster: every referenced file exists, every
document is a Kubernetes object, selectors line up, the pods run locked down and each Kafka
principal holds ACLs on its own topics only. Settings per overlay: test_deploy_k8s_settings.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.telemetry import consumer_group

from contracts.manifest import all_topic_names
from services.orders.adapters.consumer import TOPICS as ORDERS_READS
from services.orders.adapters.rows import TOPIC_OF as ORDERS_WRITES
from services.orders.settings import OrdersSettings
from services.scheduling.adapters.consumer import TOPICS as SCHEDULING_READS
from services.scheduling.adapters.rows import OEE_TOPIC, PUBLISHED_TOPIC, SCHEDULED_TOPIC
from services.scheduling.settings import SchedulingSettings
from services.telemetry.rules.book import load_rules
from services.telemetry.settings import TelemetrySettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUSTOMIZATIONS = [BASE, *OVERLAYS]
SERVICES = ("telemetry", "orders", "scheduling")
SCALED = ("telemetry", "orders")  # scheduling runs one replica: no HPA
SHARED = "millrace-settings"
GROUPS = {
    "telemetry": str(TelemetrySettings.model_fields["telemetry_consumer_group"].default),
    "orders": str(OrdersSettings.model_fields["orders_consumer_group"].default),
    "scheduling": str(SchedulingSettings.model_fields["scheduling_consumer_group"].default),
}
ALARMS_GROUP = consumer_group(GROUPS["telemetry"], "alarms")  # as the service derives it


def kustomization(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return doc


def generator_files(directory: Path) -> dict[str, Path]:
    """Generator name/key -> the file a configMapGenerator or secretGenerator reads."""
    k = kustomization(directory)
    out: dict[str, Path] = {}
    for generator in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
        for entry in generator.get("files", []):
            key, _, name = entry.rpartition("=")
            out[f"{generator['name']}/{key or Path(name).name}"] = directory / name
        out.update({f"{generator['name']}/.env": directory / e for e in generator.get("envs", [])})
    return out


def referenced_paths(directory: Path) -> list[Path]:
    """Every file or directory a kustomization names: resources, patch files, generator files."""
    k = kustomization(directory)
    names = list(k.get("resources", []))
    names += [p["path"] for p in k.get("patches", []) if "path" in p]
    return [directory / n for n in names] + list(generator_files(directory).values())


def base_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in kustomization(BASE)["resources"]:
        docs += [d for d in yaml.safe_load_all((BASE / name).read_text()) if d is not None]
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in base_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(service: str) -> dict[str, Any]:
    (only,) = find("Deployment", service)["spec"]["template"]["spec"]["containers"]
    out: dict[str, Any] = only
    return out


def plain_env(service: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(service).get("env", []) if "value" in e}


def grants(user: dict[str, Any]) -> set[tuple[str, str, str]]:
    acls = user["spec"]["authorization"]["acls"]
    return {
        (a["resource"]["type"], a["resource"]["name"], op) for a in acls for op in a["operations"]
    }


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


GENERATOR_INPUTS = {p.resolve() for d in KUSTOMIZATIONS for p in generator_files(d).values()}
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.resolve() not in GENERATOR_INPUTS)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_document_parses_as_a_kubernetes_object(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs
    for doc in docs:
        assert doc["apiVersion"]
        assert doc["kind"]
        if doc["kind"] != "Kustomization":
            assert doc["metadata"]["name"]


@pytest.mark.parametrize("service", SERVICES)
def test_base_has_the_objects_a_service_needs(service: str) -> None:
    kinds = {
        (d["apiVersion"], d["kind"])
        for d in base_documents()
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") == service
    }
    needed = {
        ("v1", "ServiceAccount"),
        ("apps/v1", "Deployment"),
        ("v1", "Service"),
        ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("kafka.strimzi.io/v1beta2", "KafkaUser"),
    }
    hpa = ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert needed | ({hpa} if service in SCALED else set()) <= kinds
    assert (hpa in kinds) == (service in SCALED)
    assert ("v1", "Namespace") in {(d["apiVersion"], d["kind"]) for d in base_documents()}


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_probes_use_healthz_and_readyz(service: str) -> None:
    c = container(service)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["args"] == ["run", service]
    assert c["resources"]["requests"]
    assert c["resources"]["limits"]["memory"]


# MILLRACE_OPS_PORT
OPS_PORT = {"telemetry": 9090, "telemetry-alarms": 9090, "orders": 9090, "scheduling": 9090}


@pytest.mark.parametrize("service", [*SERVICES, "telemetry-alarms"])
def test_the_container_listens_where_the_probes_service_and_policy_point(service: str) -> None:
    """The API on its port; with MILLRACE_OPS_PORT, probes and scrapes on the ops port, which
    only Prometheus may reach."""
    c = container(service)
    shared = [g for g in kustomization(BASE)["configMapGenerator"] if g["name"] == SHARED]
    base_port: str = dict(kv.split("=", 1) for kv in shared[0]["literals"])["MILLRACE_HTTP_PORT"]
    port = int(plain_env(service).get("MILLRACE_HTTP_PORT", base_port))
    ops = plain_env(service).get("MILLRACE_OPS_PORT")
    assert ops == (str(OPS_PORT[service]) if service in OPS_PORT else None)
    declared = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert declared == ({"http": port} if ops is None else {"http": port, "ops": int(ops)})
    probed = "http" if ops is None else "ops"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] == probed
    svc_ports = {p["name"]: p["targetPort"] for p in find("Service", service)["spec"]["ports"]}
    assert svc_ports == {name: name for name in declared}
    monitor = find("ServiceMonitor", service)["spec"]
    assert [e["port"] for e in monitor["endpoints"]] == [probed]
    ingress = find("NetworkPolicy", service)["spec"]["ingress"]
    assert [p["port"] for p in ingress[0]["ports"]] == [port]
    assert "from" not in ingress[0]  # the API (and health) from anywhere
    if ops is not None:
        (scrapes,) = ingress[1:]
        assert [p["port"] for p in scrapes["ports"]] == [int(ops)]
        (prometheus,) = scrapes["from"]
        assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_runs_locked_down(service: str) -> None:
    pod = find("Deployment", service)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    ctx = container(service)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == service


@pytest.mark.parametrize("service", SERVICES)
def test_selectors_match_the_deployment(service: str) -> None:
    deployment = find("Deployment", service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        deployment["spec"]["selector"]["matchLabels"],
        find("Service", service)["spec"]["selector"],
        find("PodDisruptionBudget", service)["spec"]["selector"]["matchLabels"],
        find("NetworkPolicy", service)["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    service_labels = find("Service", service)["metadata"]["labels"]
    monitor = find("ServiceMonitor", service)["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service_labels.items()
    port_names = {p["name"] for p in find("Service", service)["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= port_names
    assert {e["path"] for e in monitor["endpoints"]} == {"/metrics"}
    if service in SCALED:
        target = find("HorizontalPodAutoscaler", service)["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", service)


@pytest.mark.parametrize("service", SERVICES)
def test_kafka_user_is_scram_with_literal_acls_on_known_topics(service: str) -> None:
    user = find("KafkaUser", f"millrace-{service}")
    topics = [d for d in base_documents() if d["kind"] == "KafkaTopic"]
    cluster = topics[0]["metadata"]["labels"]["strimzi.io/cluster"]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    assert user["spec"]["authentication"]["type"] == "scram-sha-512"
    known = set(all_topic_names())
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl["resource"]["patternType"] == "literal"
        if acl["resource"]["type"] == "topic":
            assert acl["resource"]["name"] in known
    assert ("group", GROUPS[service], "Read") in grants(user)
    groups = {GROUPS[service], ALARMS_GROUP} if service == "telemetry" else {GROUPS[service]}
    assert {name for kind, name, _ in grants(user) if kind == "group"} == groups
    assert all(("group", g, "Read") in grants(user) for g in groups)


def test_telemetry_acls_cover_its_topics_only() -> None:
    granted = grants(find("KafkaUser", "millrace-telemetry"))
    assert ("topic", "telemetry.readings.v1", "Read") in granted
    for written in (
        "telemetry.aggregates.v1",
        "telemetry.alarms.v1",
        "telemetry.machine-states.v1",
        "telemetry.readings.v1.dlq",
    ):
        assert ("topic", written, "Write") in granted
    assert all(name.startswith("telemetry.") for kind, name, _ in granted if kind == "topic")


def test_orders_acls_are_exactly_what_its_relay_and_consumer_use() -> None:
    """Derived from the code: a topic the relay starts writing or the consumer starts reading
    without an ACL would be refused by the broker only in prod."""
    writes = set(ORDERS_WRITES.values()) | {f"{t}.dlq" for t in ORDERS_READS}
    expected = {("topic", t, op) for t in writes for op in ("Describe", "Write")}
    expected |= {("topic", t, op) for t in ORDERS_READS for op in ("Describe", "Read")}
    granted = grants(find("KafkaUser", "millrace-orders"))
    assert {g for g in granted if g[0] == "topic"} == expected
    assert all(t.startswith("orders.") for t in ORDERS_WRITES.values())


def test_scheduling_acls_are_exactly_what_its_relay_and_consumer_use() -> None:
    writes = {SCHEDULED_TOPIC, PUBLISHED_TOPIC, OEE_TOPIC} | {f"{t}.dlq" for t in SCHEDULING_READS}
    expected = {("topic", t, op) for t in writes for op in ("Describe", "Write")}
    expected |= {("topic", t, op) for t in SCHEDULING_READS for op in ("Describe", "Read")}
    granted = grants(find("KafkaUser", "millrace-scheduling"))
    assert {g for g in granted if g[0] == "topic"} == expected


def test_scheduling_runs_one_replica_that_a_rollout_overlaps_briefly() -> None:
    """One re-planner at a time; a rolling update's surge pod is safe under the service's
    advisory locks, and a node drain may take the single pod."""
    spec = find("Deployment", "scheduling")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert find("PodDisruptionBudget", "scheduling")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "scheduling"}},
    }


@pytest.mark.parametrize("service", SERVICES)
def test_kafka_user_group_is_the_consumer_group_in_the_code(service: str) -> None:
    sources = (ROOT / "services" / service).rglob("*.py")
    assert any(f'"{GROUPS[service]}"' in path.read_text() for path in sources)


def test_telemetry_alarms_mount_the_sample_alarm_rules_from_a_generated_configmap() -> None:
    rules = Path(plain_env("telemetry-alarms")["MILLRACE_TELEMETRY_ALARM_RULES"])
    pod = find("Deployment", "telemetry-alarms")["spec"]["template"]["spec"]
    (mount,) = [
        m
        for m in container("telemetry-alarms")["volumeMounts"]
        if Path(m["mountPath"]) == rules.parent
    ]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    source = generator_files(BASE)[f"{volume['configMap']['name']}/{rules.name}"]
    assert source.read_text() == (ROOT / "deploy" / "local" / "alarm-rules.yaml").read_text()
    assert load_rules(source)


@pytest.mark.parametrize(
    ("deployment", "service"),
    [("telemetry-alarms", "telemetry"), ("orders", "orders"), ("scheduling", "scheduling")],
)
def test_database_url_comes_from_a_secret(deployment: str, service: str) -> None:
    (env,) = [e for e in container(deployment)["env"] if e["name"] == "MILLRACE_DATABASE_URL"]
    ref = env["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (f"millrace-{service}-db", "url")
    prod_notes = (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert f"create secret generic millrace-{service}-db" in prod_notes


def test_telemetry_runs_windows_and_ingest_and_telemetry_alarms_the_alarms() -> None:
    assert plain_env("telemetry")["MILLRACE_TELEMETRY_ROLE"] == "windows"
    assert "MILLRACE_TELEMETRY_ALARM_RULES" not in plain_env("telemetry")
    assert "MILLRACE_DATABASE_URL" not in {e["name"] for e in container("telemetry")["env"]}
    assert plain_env("telemetry-alarms")["MILLRACE_TELEMETRY_ROLE"] == "alarms"


def test_the_alarms_deployment_is_probed_locked_down_scraped_and_drained_like_the_rest() -> None:
    name = "telemetry-alarms"
    deployment = find("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    c = container(name)
    assert c["args"] == ["run", "telemetry"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert c["resources"]["limits"]["memory"]
    assert pod["serviceAccountName"] == "telemetry"  # the telemetry principal and its ACLs
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        find("Service", name)["spec"]["selector"],
        find("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"],
        find("NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    # The telemetry Service (ingest) and its policy must not select the alarms pods.
    assert not find("Service", "telemetry")["spec"]["selector"].items() <= pod_labels.items()
    monitor = find("ServiceMonitor", name)["spec"]
    assert (
        monitor["selector"]["matchLabels"].items()
        <= find("Service", name)["metadata"]["labels"].items()
    )
    prod = yaml.safe_load(
        (K8S / "overlays" / "prod" / "telemetry-alarms-deployment.yaml").read_text()
    )
    (patched,) = prod["spec"]["template"]["spec"]["containers"]
    assert {"name": "MILLRACE_KAFKA_SASL_USERNAME", "value": "millrace-telemetry"} in patched["env"]
