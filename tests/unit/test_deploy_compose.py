"""docker-compose.yml is checked structurally: no Docker engine is needed to catch a service that
names a missing subcommand, depends on nothing, floats on an unpinned image or would refuse its
own settings at start."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from millrace.cli import COMMANDS
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PINNED = re.compile(r"^[\w./-]+:(?!latest$)[\w][\w.-]*$")
DEFAULTED = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


def builds_millrace(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    context, dockerfile = (
        (build, "Dockerfile")
        if isinstance(build, str)
        else (
            build.get("context", "."),
            build.get("dockerfile", "Dockerfile"),
        )
    )
    return (ROOT / context / dockerfile).resolve() == (ROOT / "Dockerfile").resolve()


MILLRACE = {name: svc for name, svc in SERVICES.items() if builds_millrace(svc)}


def known_services() -> set[str]:
    """Services `millrace run` accepts: its registry once it exists, else the package layout."""
    try:
        run = importlib.import_module("millrace.commands.run")
    except ModuleNotFoundError:
        return {p.parent.name for p in (ROOT / "services").glob("*/__init__.py")}
    return set(run.SERVICES)


def subcommand_parser(name: str) -> argparse.ArgumentParser | None:
    """A parser holding only the subcommand `name`, or None while its module is not written."""
    try:
        module = importlib.import_module(f"millrace.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"millrace.commands.{name}":
            raise
        return None
    parser = argparse.ArgumentParser(prog="millrace", exit_on_error=False)
    module.register(parser.add_subparsers(dest="command", required=True))
    return parser


def settings_class(argv: list[str]) -> type[ServiceSettings]:
    """The settings a command loads: a service's own subclass once it exists, else the base."""
    if argv[0] != "run":
        return ServiceSettings
    name = f"services.{argv[1]}.settings"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in {f"services.{argv[1]}", name}:
            raise
        return ServiceSettings
    own = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v.__module__ == name
    ]
    return own[0] if len(own) == 1 else ServiceSettings


def interpolated(value: object) -> str:
    """A compose value as the container sees it when the host sets none of its variables."""
    return DEFAULTED.sub(lambda m: m.group(2), str(value))


def host_paths(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of each bind mount, so settings naming a mounted file can be
    checked against the file compose would mount."""
    out: dict[str, str] = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            out[target] = str(ROOT / source)
    return out


def test_millrace_image_is_built_by_several_services() -> None:
    assert {"topics", "masterdata", "telemetry", "orders", "scheduling", "simulator"} <= set(
        MILLRACE
    )


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_pinned_image_or_builds_the_dockerfile(name: str) -> None:
    service = SERVICES[name]
    assert builds_millrace(service) or PINNED.match(service.get("image", "")), service.get("image")


@pytest.mark.parametrize("name", sorted(MILLRACE))
def test_millrace_commands_are_real_subcommands(name: str) -> None:
    argv = [str(a) for a in MILLRACE[name]["command"]]
    assert argv[0] in COMMANDS
    if argv[0] == "run":
        assert argv[1] in known_services()
    parser = subcommand_parser(argv[0])
    if parser is not None:
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"millrace {' '.join(argv)} is rejected by the CLI ({exc.code})")


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on_targets_exist_and_can_satisfy_their_condition(name: str) -> None:
    for target, spec in (SERVICES[name].get("depends_on") or {}).items():
        assert target in SERVICES, f"{name} depends on unknown service {target}"
        condition = spec.get("condition")
        if condition == "service_healthy":
            check = SERVICES[target].get("healthcheck", {})
            assert check.get("test"), f"{target} has no healthcheck"
            assert not check.get("disable"), f"{target} has its healthcheck disabled"
        elif condition == "service_completed_successfully":
            assert SERVICES[target].get("restart", "no") == "no", f"{target} is not a one-shot"


def test_services_start_in_order_kafka_topics_then_consumers() -> None:
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("telemetry", "telemetry-alarms", "simulator", "masterdata", "orders"):
        assert SERVICES[name]["depends_on"]["topics"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("telemetry-alarms", "orders"):
        assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["orders"]["depends_on"]["masterdata"]["condition"] == (
        "service_completed_successfully"
    )


def test_masterdata_loads_the_mounted_sample_plant() -> None:
    masterdata = SERVICES["masterdata"]
    argv = [str(a) for a in masterdata["command"]]
    assert argv[:2] == ["masterdata", "load"]
    assert Path(host_paths(masterdata)[argv[2]]).resolve() == (
        ROOT / "deploy" / "local" / "plant.yaml"
    )
    assert masterdata.get("restart", "no") == "no"


def test_kafka_is_a_single_kraft_node_with_a_healthcheck() -> None:
    kafka = SERVICES["kafka"]
    env = kafka["environment"]
    assert re.fullmatch(r"apache/kafka:4\.1\.\d+", kafka["image"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert str(env["KAFKA_CONTROLLER_QUORUM_VOTERS"]).startswith(f"{env['KAFKA_NODE_ID']}@kafka:")
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "/opt/kafka/bin/" in " ".join(kafka["healthcheck"]["test"])


def test_telemetry_is_ready_checked_and_published_on_8080() -> None:
    telemetry = SERVICES["telemetry"]
    assert "/readyz" in " ".join(telemetry["healthcheck"]["test"])
    assert any(str(p).endswith("8080:8080") for p in telemetry["ports"])
    assert telemetry["environment"]["MILLRACE_HTTP_HOST"] == "0.0.0.0"


def test_telemetry_alarms_run_the_mounted_sample_rules_on_the_compose_postgres() -> None:
    alarms = SERVICES["telemetry-alarms"]
    env = alarms["environment"]
    assert env["MILLRACE_TELEMETRY_ROLE"] == "alarms"
    assert alarms["command"] == SERVICES["telemetry"]["command"]
    rules = host_paths(alarms)[env["MILLRACE_TELEMETRY_ALARM_RULES"]]
    assert Path(rules).resolve() == ROOT / "deploy" / "local" / "alarm-rules.yaml"
    assert any(str(v).endswith(":ro") for v in alarms["volumes"])
    assert "@postgres:5432/" in env["MILLRACE_DATABASE_URL"]
    assert alarms["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(alarms["healthcheck"]["test"])
    assert "ports" not in alarms  # nothing to publish: its metrics are scraped in the network


def test_telemetry_runs_the_windows_role_beside_the_alarms() -> None:
    env = SERVICES["telemetry"]["environment"]
    assert env["MILLRACE_TELEMETRY_ROLE"] == "windows"
    assert "MILLRACE_TELEMETRY_ALARM_RULES" not in env


def test_orders_is_ready_checked_and_published_on_its_own_port() -> None:
    orders = SERVICES["orders"]
    env = orders["environment"]
    port = str(env["MILLRACE_HTTP_PORT"])
    assert port != str(SERVICES["telemetry"]["environment"]["MILLRACE_HTTP_PORT"])
    assert f"127.0.0.1:{port}/readyz" in " ".join(orders["healthcheck"]["test"])
    assert any(str(p).endswith(f"{port}:{port}") for p in orders["ports"])
    assert env["MILLRACE_HTTP_HOST"] == "0.0.0.0"
    assert "@postgres:5432/" in env["MILLRACE_DATABASE_URL"]


def test_compose_orders_tokens_are_the_printed_demo_tokens() -> None:
    """The README and `make demo` print these tokens; compose must accept the same ones."""
    demo = importlib.import_module("millrace.demo.orders")
    configured = json.loads(SERVICES["orders"]["environment"]["MILLRACE_ORDERS_TOKENS"])
    assert configured == json.loads(demo.tokens_env())


def test_scheduling_is_ready_checked_on_8082_with_the_demo_tokens_and_clock() -> None:
    scheduling = SERVICES["scheduling"]
    env = scheduling["environment"]
    assert scheduling["command"] == ["run", "scheduling"]
    assert str(env["MILLRACE_HTTP_PORT"]) == "8082"
    assert "127.0.0.1:8082/readyz" in " ".join(scheduling["healthcheck"]["test"])
    assert "127.0.0.1:8082:8082" in scheduling["ports"]
    assert "@postgres:5432/" in env["MILLRACE_DATABASE_URL"]
    demo = importlib.import_module("millrace.demo.orders")
    assert json.loads(env["MILLRACE_SCHEDULING_TOKENS"]) == json.loads(demo.tokens_env())
    # the shop floor's repair time is what the planner expects a breakdown to last
    simulator = [str(a) for a in SERVICES["simulator"]["command"]]
    assert env["MILLRACE_SCHEDULING_REPAIR_S"] == simulator[simulator.index("--repair") + 1]
    assert float(env["MILLRACE_SCHEDULING_DURATION_SCALE"]) < 1
    for needed in ("masterdata", "topics"):
        assert scheduling["depends_on"][needed]["condition"] == "service_completed_successfully"
    assert scheduling["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_simulator_is_the_sample_plant_executing_the_plan() -> None:
    simulator = SERVICES["simulator"]
    argv = [str(a) for a in simulator["command"]]
    assert argv[argv.index("--fleet") + 1] == "plant"
    plant = host_paths(simulator)[argv[argv.index("--plant") + 1]]
    assert Path(plant).resolve() == ROOT / "deploy" / "local" / "plant.yaml"
    assert argv[argv.index("--orders-url") + 1] == "http://orders:8081"
    assert simulator["environment"]["MILLRACE_SIMULATOR_ORDERS_TOKEN"] == "demo-acme-token"
    for needed in ("telemetry", "orders", "scheduling"):
        assert simulator["depends_on"][needed]["condition"] == "service_healthy"


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, source
            else:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("name", sorted(MILLRACE))
def test_millrace_settings_in_compose_pass_fail_closed_validation(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("MILLRACE_")]:
        monkeypatch.delenv(key)
    mounts = host_paths(MILLRACE[name])
    for key, value in MILLRACE[name].get("environment", {}).items():
        monkeypatch.setenv(key, mounts.get(str(value), interpolated(value)))
    argv = [str(a) for a in MILLRACE[name]["command"]]
    settings = settings_class(argv)()
    assert settings.bootstrap_servers == ["kafka:9092"]
    assert settings.env == "dev"
