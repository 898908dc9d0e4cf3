"""The Dockerfile and .dockerignore, checked as text: no Docker engine is needed to see that the
image is multi-stage, installs only locked versions, and runs as a non-root user."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IGNORED = {
    line.strip()
    for line in (ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_is_multi_stage_with_a_slim_python_311_runtime() -> None:
    assert len(stages()) >= 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.M)
    runtime = stages()[-1]
    assert any(k == "COPY" and "--from=builder" in r and "/opt/venv" in r for k, r in runtime)


def test_runtime_runs_as_a_non_root_user() -> None:
    users = [rest for keyword, rest in stages()[-1] if keyword == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_entrypoint_cmd_and_healthcheck() -> None:
    runtime = dict(stages()[-1])
    assert runtime["ENTRYPOINT"] == '["millrace"]'
    assert runtime["CMD"] == '["run", "telemetry"]'
    assert "/healthz" in runtime["HEALTHCHECK"]
    assert "org.opencontainers.image.title" in runtime["LABEL"]


def test_dependencies_come_from_the_lock_with_the_makefile_uv() -> None:
    makefile_uv = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_uv is not None
    assert f"ARG UV_VERSION={makefile_uv.group(1)}" in DOCKERFILE
    assert '"uv==${UV_VERSION}"' in DOCKERFILE
    builder = " ".join(rest for _, rest in stages()[0])
    assert "--constraint requirements.lock" in builder
    assert "pip sync" in builder
    assert re.search(r"uv pip install [^&]*--no-deps \.", builder)


def test_every_copied_source_exists_and_is_not_ignored() -> None:
    for keyword, rest in stages()[0]:
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for source in sources:
            if "*" in source:
                continue
            assert (ROOT / source).exists(), source
            assert source not in IGNORED, source


def test_packages_listed_in_pyproject_are_copied() -> None:
    copied = {rest.split()[0] for keyword, rest in stages()[0] if keyword == "COPY"}
    pyproject = (ROOT / "pyproject.toml").read_text()
    found = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert found is not None
    for pattern in re.findall(r'"([a-z_]+)\*"', found.group(1)):
        assert pattern in copied, pattern


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    assert {".git", ".venv", ".run", ".mypy_cache", ".pytest_cache", ".ruff_cache"} <= IGNORED
    assert "**/__pycache__" in IGNORED
