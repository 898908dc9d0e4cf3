"""The documents stand on their own: every relative link resolves inside the repository, and
nothing cites a design document that a clone does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
# [text](target), where the target is not a URL or an anchor in the same document.
_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s]+)\)")
_SOURCES = ("contracts", "shared", "services", "millrace", "bench", "tests", "deploy", "docs")


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = [
        target
        for target in _LINK.findall(doc.read_text(encoding="utf-8"))
        if not (doc.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{doc.relative_to(ROOT)} links to missing files: {broken}"


def test_the_architecture_is_in_the_repository() -> None:
    outside = "DESIGN" + ".md"  # spelled apart so that this file does not cite it
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder in _SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".yaml"}]
    citing = [str(p.relative_to(ROOT)) for p in files if outside in p.read_text(encoding="utf-8")]
    assert not citing, f"cite {outside} instead of docs/architecture.md: {citing}"
    assert (ROOT / "docs" / "architecture.md").is_file()
