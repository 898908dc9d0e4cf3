"""``millrace contracts check`` against a real git history: drift, compat, missing base."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from contracts import check

REL = "contracts/schemas/orders.order-placed.v1.json"
V1: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
    "required": ["order_id"],
}


def text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(check.BASE_REF_ENV, raising=False)
    (tmp_path / "contracts/schemas").mkdir(parents=True)
    (tmp_path / REL).write_text(text(V1))
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "v1")
    return tmp_path


def test_unchanged_schema_passes(repo: Path) -> None:
    report = check.run(repo, {REL: text(V1)})
    assert report.problems == []


def test_drift_names_the_file_and_the_fix(repo: Path) -> None:
    newer = {**V1, "description": "changed model"}
    report = check.run(repo, {REL: text(newer)})
    assert report.problems == [
        f"{REL}: differs from what the models generate; run `make contracts` and commit the result"
    ]


def test_breaking_change_against_main_fails(repo: Path) -> None:
    broken = {**V1, "properties": {"order_id": {"type": "integer"}}}
    (repo / REL).write_text(text(broken))
    report = check.run(repo, {REL: text(broken)})
    assert report.problems == [
        f"{REL}: breaking change against main: "
        "$.note: field removed (a rename is a removal plus an addition)",
        f"{REL}: breaking change against main: $.order_id: type changed from string to integer",
    ]


def test_origin_main_is_used_when_main_is_absent(repo: Path) -> None:
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "branch", "-q", "-D", "main")
    broken = {**V1, "required": ["order_id", "note"]}
    (repo / REL).write_text(text(broken))
    report = check.run(repo, {REL: text(broken)})
    assert report.problems == [
        f"{REL}: breaking change against origin/main: $.note: optional field made required"
    ]


def test_missing_base_ref_is_noted_and_accepted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(check.BASE_REF_ENV, "release-9")
    broken = {**V1, "properties": {}}
    (repo / REL).write_text(text(broken))
    report = check.run(repo, {REL: text(broken)})
    assert report.problems == []
    assert report.notes == ["no base ref (release-9) found: compatibility not checked"]


def test_new_topic_is_accepted(repo: Path) -> None:
    new_rel = "contracts/schemas/orders.order-cancelled.v1.json"
    (repo / new_rel).write_text(text(V1))
    report = check.run(repo, {REL: text(V1), new_rel: text(V1)})
    assert report.problems == []
    assert f"{new_rel}: not on main (new topic), accepted" in report.notes


def test_deleted_contract_and_stale_file_fail(repo: Path) -> None:
    (repo / REL).unlink()
    stale = "contracts/schemas/orders.gone.v1.json"
    (repo / stale).write_text(text(V1))
    report = check.run(repo, {})
    assert any(p.startswith(f"{stale}: no model generates it") for p in report.problems)
    assert any(p.startswith(f"{REL}: exists on main but was removed") for p in report.problems)


def test_outside_git_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(check.BASE_REF_ENV, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "contracts/schemas").mkdir(parents=True)
    (tmp_path / REL).write_text(text(V1))
    report = check.run(tmp_path, {REL: text(V1)})
    assert report.problems == []
    assert report.notes == ["no base ref (main or origin/main) found: compatibility not checked"]
