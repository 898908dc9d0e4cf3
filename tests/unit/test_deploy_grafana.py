"""Grafana provisioning: datasource and dashboards load at start and point at each other."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
METRIC = re.compile(r"\bmillrace_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def datasources() -> list[dict[str, Any]]:
    return [
        ds
        for path in (GRAFANA / "provisioning" / "datasources").glob("*.yml")
        for ds in yaml.safe_load(path.read_text())["datasources"]
    ]


def prometheus_uid() -> str:
    (ds,) = [d for d in datasources() if d["type"] == "prometheus"]
    return str(ds["uid"])


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return [p for p in out if p.get("type") != "row"]


def base_name(metric: str) -> str:
    for suffix in SUFFIXES:
        if metric.endswith(suffix):
            return metric.removesuffix(suffix)
    return metric


def test_datasource_points_at_the_compose_prometheus() -> None:
    (ds,) = [d for d in datasources() if d["type"] == "prometheus"]
    host_port = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", ds["url"])
    assert host_port is not None
    assert host_port.group(1) in COMPOSE["services"]
    assert ds.get("isDefault") is True


def test_dashboard_provider_path_is_where_compose_mounts_the_dashboards() -> None:
    providers = [
        p
        for path in (GRAFANA / "provisioning" / "dashboards").glob("*.yml")
        for p in yaml.safe_load(path.read_text())["providers"]
    ]
    mounts = {
        str(v).split(":")[1]: str(v).split(":")[0]
        for v in COMPOSE["services"]["grafana"]["volumes"]
    }
    for provider in providers:
        source = mounts[provider["options"]["path"]]
        assert (ROOT / source).resolve() == (GRAFANA / "dashboards").resolve()


def used_metrics(name: str) -> set[str]:
    dashboard = json.loads((GRAFANA / "dashboards" / name).read_text())
    return {
        base_name(m)
        for p in panels(dashboard)
        for t in p["targets"]
        for m in METRIC.findall(t["expr"])
    }


def test_there_are_telemetry_orders_and_scheduling_dashboards() -> None:
    assert {"telemetry.json", "orders.json", "scheduling.json"} <= {p.name for p in DASHBOARDS}


def test_dashboard_uids_are_unique() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_and_uses_the_provisioned_datasource(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"]
    uid = prometheus_uid()
    ids = [p["id"] for p in panels(dashboard)]
    assert ids
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid
            assert METRIC.search(target["expr"]), target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == uid


def test_telemetry_dashboard_covers_the_hot_path_alarms_and_states() -> None:
    assert {
        "millrace_telemetry_readings",
        "millrace_telemetry_windows_emitted",
        "millrace_telemetry_open_windows",
        "millrace_telemetry_consumer_lag",
        "millrace_telemetry_late_readings",
        "millrace_dlq_records",
        "millrace_telemetry_ingest_requests",
        "millrace_telemetry_alarms_raised",
        "millrace_telemetry_alarms_cleared",
        "millrace_telemetry_active_alarms",
        "millrace_telemetry_machine_state_changes",
    } <= used_metrics("telemetry.json")


def test_orders_dashboard_shows_every_orders_metric() -> None:
    """Every metric services/orders/metrics.py declares has a panel: one added later without
    a panel fails here."""
    declared = re.findall(
        r"""["'](millrace_orders_[a-z0-9_]+)["']""",
        (ROOT / "services" / "orders" / "metrics.py").read_text(),
    )
    assert declared
    assert {base_name(m) for m in declared} <= used_metrics("orders.json")


def test_scheduling_dashboard_shows_every_scheduling_metric() -> None:
    declared = re.findall(
        r"""["'](millrace_scheduling_[a-z0-9_]+)["']""",
        (ROOT / "services" / "scheduling" / "metrics.py").read_text(),
    )
    assert declared
    assert {base_name(m) for m in declared} <= used_metrics("scheduling.json")
