"""``millrace contracts check``: drift against the models, compatibility against ``main``.

CI runs on a fresh clone of ``main`` (where ``main`` may only exist as ``origin/main``), on a
feature branch, or outside git altogether; a missing base is reported and accepted, never fatal,
because a new topic or a new repository has nothing to be compatible with.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from contracts.compat import breaking_changes
from contracts.schemagen import SCHEMA_DIR

BASE_REF_ENV = "MILLRACE_CONTRACTS_BASE_REF"
DEFAULT_REFS = ("main", "origin/main")

# (ref, repository-relative path) -> file content at that ref, or None when absent
BaseReader = Callable[[str, str], str | None]


@dataclass
class Report:
    """What the check found: problems fail it, notes are informational."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def drift(root: Path, expected: Mapping[str, str]) -> list[str]:
    """Generated files whose committed content differs from what the models generate now."""
    fix = "run `make contracts` and commit the result"
    out = []
    for rel, content in expected.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel}: missing; {fix}")
        elif path.read_text(encoding="utf-8") != content:
            out.append(f"{rel}: differs from what the models generate; {fix}")
    for stale in sorted((root / SCHEMA_DIR).glob("*.json")):
        rel = stale.relative_to(root).as_posix()
        if rel not in expected:
            out.append(f"{rel}: no model generates it any more; {fix}")
    return out


def _git(root: Path, *args: str) -> str | None:
    """stdout of a git command, or None when it fails or git is not there."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode() if done.returncode == 0 else None


def git_reader(root: Path) -> BaseReader:
    """Files at a git ref of the checkout at ``root``; None when ref, file or git is missing."""
    return lambda ref, rel: _git(root, "show", f"{ref}:{rel}")


def git_has_ref(root: Path, ref: str) -> bool:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}") is not None


def base_refs() -> tuple[str, ...]:
    """The refs to compare against: the override alone, or ``main`` then ``origin/main``."""
    override = os.environ.get(BASE_REF_ENV, "").strip()
    return (override,) if override else DEFAULT_REFS


def compatibility(
    current: Mapping[str, str], ref: str | None, read_base: BaseReader, report: Report
) -> None:
    """Check every schema in ``current`` against its version at ``ref``."""
    if ref is None:
        report.notes.append(
            f"no base ref ({' or '.join(base_refs())}) found: compatibility not checked"
        )
        return
    for rel, text in sorted(current.items()):
        base = read_base(ref, rel)
        if base is None:
            report.notes.append(f"{rel}: not on {ref} (new topic), accepted")
            continue
        violations = breaking_changes(json.loads(base), json.loads(text))
        report.problems.extend(f"{rel}: breaking change against {ref}: {v}" for v in violations)


def run(root: Path, expected: Mapping[str, str]) -> Report:
    """Drift of every generated file, then compatibility of the committed schemas with the base."""
    report = Report(problems=drift(root, expected))
    committed = {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted((root / SCHEMA_DIR).glob("*.json"))
    }
    ref = next((r for r in base_refs() if git_has_ref(root, r)), None)
    compatibility(committed, ref, git_reader(root), report)
    if ref is not None:
        for rel in _removed_on(root, ref, committed):
            report.problems.append(
                f"{rel}: exists on {ref} but was removed; a contract is retired by a new major "
                "topic published side by side, not deleted"
            )
    return report


def _removed_on(root: Path, ref: str, committed: Mapping[str, str]) -> list[str]:
    listing = _git(root, "ls-tree", "--name-only", f"{ref}:{SCHEMA_DIR}") or ""
    names = [f"{SCHEMA_DIR}/{n}" for n in listing.split() if n.endswith(".json")]
    return [rel for rel in names if rel not in committed]
