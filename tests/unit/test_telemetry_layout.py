"""The telemetry package's layout: every module imports, its parts depend on each other without a
cycle, and the pure domains stand on their own.

A part is a subpackage (``rules``, ``windows``, ...) or a top-level module (``settings``, ...).
Imports are read from the sources with ``ast``, including those inside functions: an import
deferred to run time to dodge a cycle is still a dependency, and the cycle is still there.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import services.telemetry

PACKAGE = "services.telemetry"
ROOT = Path(services.telemetry.__file__).parent


def _modules() -> list[str]:
    found = pkgutil.walk_packages(services.telemetry.__path__, prefix=f"{PACKAGE}.")
    return sorted(info.name for info in found)


def _sources() -> dict[Path, str]:
    """Every source file of the package but its own ``__init__`` -> the part it belongs to."""
    files = (path for path in ROOT.rglob("*.py") if path != ROOT / "__init__.py")
    return {path: path.relative_to(ROOT).parts[0].removesuffix(".py") for path in files}


def _imported(path: Path, parts: set[str]) -> set[str]:
    """The parts of the package that the module at ``path`` imports."""
    package = [PACKAGE, *path.relative_to(ROOT).parent.parts]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names += [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for name in names:
        if name.startswith(f"{PACKAGE}."):
            head = name.removeprefix(f"{PACKAGE}.").split(".")[0]
            if head in parts:
                found.add(head)
    return found


def _graph() -> dict[str, set[str]]:
    """Each part -> the other parts it imports."""
    sources = _sources()
    parts = set(sources.values())
    graph: dict[str, set[str]] = {part: set() for part in parts}
    for path, part in sources.items():
        graph[part] |= _imported(path, parts) - {part}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            found = visit(nxt, [*path, node])
            if found is not None:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_parts_import_each_other_without_a_cycle() -> None:
    assert _cycle(_graph()) is None


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_window_domain_imports_nothing_else_of_the_service() -> None:
    # ``domain`` is the window domain's former home, while it moves to ``windows``.
    graph = _graph()
    homes = {"windows", "domain"} & set(graph)
    assert homes
    for home in homes:
        assert graph[home] <= homes, home


def test_rules_are_shared_and_alarms_and_states_stay_apart() -> None:
    graph = _graph()
    assert graph["rules"] == set()
    assert graph["alarms"] == {"rules"}
    assert graph["states"] == {"rules"}
