"""Loading migration files: naming, order, checksums. No database needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from shared.migrations import MigrationError, load


def test_loads_only_numbered_sql_files_in_version_order(tmp_path: Path) -> None:
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "1_bad_name.sql").write_text("SELECT 0;")
    (tmp_path / "0003_notes.txt").write_text("ignored")

    migrations = load(tmp_path)

    assert [(m.version, m.name, m.sql) for m in migrations] == [
        (1, "first", "SELECT 1;"),
        (2, "second", "SELECT 2;"),
    ]
    assert migrations[0].checksum == hashlib.sha256(b"SELECT 1;").hexdigest()


def test_duplicate_versions_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="0001"):
        load(tmp_path)


def test_loads_from_a_package_as_services_ship_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "fakesvc" / "migrations"
    package.mkdir(parents=True)
    (tmp_path / "fakesvc" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "0001_init.sql").write_text("CREATE TABLE t (id int);")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert [m.name for m in load("fakesvc.migrations")] == ["init"]
