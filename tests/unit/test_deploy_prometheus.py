"""Prometheus config and rules, checked against the compose stack and the metrics the code declares.

promtool is not needed here; CI may additionally run
`promtool test rules deploy/prometheus/rules/millrace.rules.test.yml`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
CONFIG: dict[str, Any] = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())[
    "services"
]
RULE_FILES = sorted(
    {p for pattern in CONFIG["rule_files"] for p in PROM_DIR.glob(pattern)}, key=str
)
TEST_FILES = sorted((PROM_DIR / "rules").glob("*.test.yml"))
METRIC = re.compile(r"\bmillrace_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
IMAGE_METRICS_PORTS = {"prom/prometheus": 9090, "grafana/grafana": 3000}


def metrics_endpoint(name: str, service: dict[str, Any]) -> str | None:
    """host:port where a compose service serves /metrics, or None if it serves none."""
    image = str(service.get("image", "")).rsplit(":", 1)[0]
    if image in IMAGE_METRICS_PORTS:
        return f"{name}:{IMAGE_METRICS_PORTS[image]}"
    command = service.get("command") or []
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if "build" not in service or not argv:
        return None
    if argv[0] == "run":
        return f"{name}:{service.get('environment', {}).get('MILLRACE_HTTP_PORT', 8080)}"
    if argv[0] == "simulate" and "--metrics-port" in argv:
        port = argv[argv.index("--metrics-port") + 1]
        return f"{name}:{port}" if port != "0" else None
    return None


def scrape_targets() -> dict[str, str]:
    """target -> job name."""
    return {
        target: job["job_name"]
        for job in CONFIG["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def base_name(metric: str) -> str:
    for suffix in SUFFIXES:
        if metric.endswith(suffix):
            return metric.removesuffix(suffix)
    return metric


def declared_metrics() -> set[str]:
    """Metric names declared in the source tree (string literals starting with millrace_)."""
    names: set[str] = set()
    for package in ("shared", "services", "millrace"):
        for path in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r"""["'](millrace_[a-z0-9_]+)["']""", path.read_text()))
    return {base_name(n) for n in names}


def alerts() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_every_compose_service_serving_metrics_is_scraped() -> None:
    expected = {
        ep for name, svc in SERVICES.items() if (ep := metrics_endpoint(name, svc)) is not None
    }
    assert {
        "telemetry:8080",
        "orders:8081",
        "scheduling:8082",
        "simulator:9101",
        "prometheus:9090",
    } <= expected
    assert expected <= set(scrape_targets())


def test_every_scrape_target_is_a_compose_service() -> None:
    for target in scrape_targets():
        assert target.rsplit(":", 1)[0] in SERVICES, target


def test_job_names_are_unique() -> None:
    jobs = [job["job_name"] for job in CONFIG["scrape_configs"]]
    assert len(jobs) == len(set(jobs))


def test_rule_files_glob_finds_the_rules_but_not_their_tests() -> None:
    assert [p.name for p in RULE_FILES] == ["millrace.rules.yml"]


@pytest.mark.parametrize("name", sorted(alerts()))
def test_alert_rules_are_complete(name: str) -> None:
    rule = alerts()[name]
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"]
    assert rule["annotations"]["description"]
    assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s"))


def test_the_named_alerts_exist() -> None:
    assert {
        "MillraceTelemetryDown",
        "MillraceDlqRecordsRising",
        "MillraceTelemetryConsumerLagHigh",
        "MillraceTelemetryWindowEmitLagHigh",
        "MillraceCriticalAlarmRaised",
        "MillraceOrdersDown",
        "MillraceOrdersHttp5xx",
        "MillraceOrdersOutboxBacklogGrowing",
        "MillraceOrdersRelayStalled",
        "MillraceSchedulingDown",
        "MillraceSchedulingNoRecentPlan",
        "MillraceSchedulingPlanInfeasible",
        "MillraceSchedulingLateOperations",
        "MillraceSchedulingTaskRestarting",
        "MillraceSchedulingRelayStalled",
    } <= set(alerts())


@pytest.mark.parametrize("job", ["telemetry", "orders", "scheduling"])
def test_each_service_has_a_down_alert_on_its_scrape_job(job: str) -> None:
    jobs = {j["job_name"] for j in CONFIG["scrape_configs"]}
    assert job in jobs
    assert any(rule["expr"].strip() == f'up{{job="{job}"}} == 0' for rule in alerts().values())


def test_rule_tests_are_in_promtool_format_and_cover_every_alert() -> None:
    tested: set[str] = set()
    for path in TEST_FILES:
        doc = yaml.safe_load(path.read_text())
        for rule_file in doc["rule_files"]:
            assert (path.parent / rule_file).resolve() in {p.resolve() for p in RULE_FILES}
        for case in doc["tests"]:
            assert re.fullmatch(r"\d+[smh]", case["interval"])
            for series in case["input_series"]:
                assert re.fullmatch(r"[a-z_:][a-z0-9_:]*\{.*\}", series["series"])
                assert isinstance(series["values"], str)
            for check in case["alert_rule_test"]:
                assert re.fullmatch(r"\d+[smh]", check["eval_time"])
                assert isinstance(check["exp_alerts"], list)
                tested.add(check["alertname"])
    assert tested == set(alerts())


def test_every_alert_is_seen_firing_by_some_rule_test() -> None:
    """An alert tested only with empty expectations would pass even if it could never fire."""
    fired: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            fired |= {c["alertname"] for c in case["alert_rule_test"] if c["exp_alerts"]}
    assert fired == set(alerts())


def test_rules_and_dashboards_only_use_metrics_the_code_declares() -> None:
    """A metric whose component has landed must be declared: a typo would leave an alert silent
    or a panel empty without any error."""
    declared = declared_metrics()
    landed = {n.split("_")[1] for n in declared}
    sources = [*RULE_FILES, *(ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")]
    used = {base_name(m) for path in sources for m in METRIC.findall(path.read_text())}
    assert used
    for metric in used:
        if metric.split("_")[1] in landed:
            assert metric in declared, metric
