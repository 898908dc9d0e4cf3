"""Which code the run's children execute: by default a snapshot of the committed ``HEAD``
(``git archive``), so that files half-edited in the working tree cannot make a service fail to
start and be mistaken for a fault it did not survive; ``CHAOS_SOURCE=worktree`` runs the
working tree as it is. The report names the commit either way."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.config import ROOT


@dataclass(frozen=True)
class Source:
    root: Path
    commit: str
    kind: str
    uncommitted_files: int
    """Files of the working tree that differ from HEAD (not in a snapshot run's code)."""

    def env(self) -> dict[str, str]:
        """PYTHONPATH for a child: before the editable install's path to the working tree."""
        return {"PYTHONPATH": str(self.root)}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True)
    return done.stdout.decode().strip()


def prepare(kind: str, into: Path) -> Source:
    commit = _git("rev-parse", "HEAD")
    dirty = len([line for line in _git("status", "--porcelain").splitlines() if line.strip()])
    if kind == "worktree":
        return Source(ROOT, commit, kind, dirty)
    if kind != "head":
        raise ValueError(f"CHAOS_SOURCE: head or worktree, not {kind!r}")
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return Source(into, commit, kind, dirty)
