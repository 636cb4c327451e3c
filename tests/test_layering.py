"""The package's layering: which modules may import the engine's clients and each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BUILDER = ROOT / "builder"


def _imports(path: Path) -> set[str]:
    """The top-level package names and full module names a file imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names | {name.split(".")[0] for name in names}


def _importers(package: str) -> set[str]:
    """Builder's modules (as paths from the root) that import ``package``."""
    return {
        str(path.relative_to(ROOT)) for path in BUILDER.rglob("*.py") if package in _imports(path)
    }


def test_only_the_engine_imports_the_docker_sdk() -> None:
    """The Docker SDK is imported under builder/engine/ and nowhere else in builder."""
    importers = _importers("docker")
    outside = {path for path in importers if not path.startswith("builder/engine/")}

    assert set() == outside
    assert importers, "the scan found no importer at all: it is broken"


def test_testcontainers_is_imported_by_the_engine_and_the_server_modules_only() -> None:
    """testcontainers: the engine starts its containers, a server module names its class."""
    allowed = ("builder/engine/", "builder/servers/")
    importers = _importers("testcontainers")
    outside = {path for path in importers if not path.startswith(allowed)}

    assert set() == outside
    assert importers, "the scan found no importer at all: it is broken"


@pytest.mark.parametrize("stage", ["image", "deploy", "verify", "engine", "servers"])
def test_a_stage_does_not_import_the_commands(stage: str) -> None:
    """Stages are wired by the commands, never the other way: no stage imports a command."""
    importers = {
        path for path in _importers("builder.commands") if path.startswith(f"builder/{stage}/")
    }

    assert set() == importers


def test_the_runtime_imports_nothing_of_the_host_package() -> None:
    """kitbuild_runtime ships alone in every image: it never imports builder."""
    importers = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "kitbuild_runtime").rglob("*.py")
        if "builder" in _imports(path)
    }

    assert set() == importers
