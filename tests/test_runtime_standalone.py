"""kitbuild_runtime is copied into images as it is: it must stand alone on the standard library."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kitbuild_runtime

PACKAGE = Path(kitbuild_runtime.__file__).parent
#: Modules that run only in the image, where Django and gunicorn are installed.
IMAGE_ONLY = {"django_settings", "wsgi", "gunicorn_config", "worker"}
#: django-compressor is asked about only when the image has it (buildsteps).
IMAGE_LIBRARIES = {"django", "gunicorn", "compressor"}


def imported(nodes: list[ast.stmt]) -> set[str]:
    """The top-level package of every import among ``nodes`` (and inside them)."""
    names: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.ImportFrom):
                names.add((node.module or "").split(".")[0])
            elif isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.stem)
def test_imports_only_the_standard_library_and_itself(path: Path) -> None:
    """Every module imports the standard library, the package, and Django only in the image.

    A shared module may import Django or gunicorn inside a function the image alone runs
    (the entrypoint's migrate), never at import time: the host imports it without them.
    """
    tree = ast.parse(path.read_text())
    own = set(sys.stdlib_module_names) | {"kitbuild_runtime"}
    at_import_time = imported([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))])
    anywhere = imported(tree.body)

    assert set() == anywhere - own - IMAGE_LIBRARIES
    if path.stem not in IMAGE_ONLY:
        assert set() == at_import_time - own


def test_runs_alone_in_an_isolated_interpreter(tmp_path: Path) -> None:
    """Copied alone into an empty directory, the package plans and writes its plan line."""
    shutil.copytree(PACKAGE, tmp_path / "kitbuild_runtime")
    script = (
        "import sys; sys.path.insert(0, '.');"
        "from kitbuild_runtime import capacity, events;"
        "s, src = capacity.read_settings({'cpus': '2', 'max_connections': '1000',"
        " 'reserved': '40', 'connections_per_thread': '2', 'max_threads': '0'}, {});"
        "p = capacity.make_plan(s, capacity.read_limits(), src);"
        "print(events.PlanRecord(p, 1000).to_line())"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": ""},
    )

    assert "" == result.stderr
    record = json.loads(result.stdout)
    assert ("kitbuild.plan", 5, 96) == (record["event"], record["workers"], record["threads"])
