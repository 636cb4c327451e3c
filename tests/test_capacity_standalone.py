"""capacity.py is copied into images: it must stand alone on the standard library."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import builder.capacity

SOURCE = Path(builder.capacity.__file__)


def test_imports_only_the_standard_library() -> None:
    """Every import in capacity.py names a standard-library module."""
    tree = ast.parse(SOURCE.read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }

    assert set() == {name for name in imported if name not in sys.stdlib_module_names}


def test_runs_as_a_lone_file_in_an_isolated_interpreter(tmp_path: Path) -> None:
    """Copied alone into an empty directory, the module imports and plans (as in the image)."""
    copy = tmp_path / "capacity.py"
    copy.write_text(SOURCE.read_text())
    script = (
        "import sys; sys.path.insert(0, '.');"
        "import capacity, json;"
        "s, src = capacity.read_settings({'cpus': '2', 'max_connections': '1000',"
        " 'reserved': '40', 'connections_per_thread': '2', 'max_threads': '0'}, {});"
        "p = capacity.make_plan(s, capacity.read_limits(), src);"
        "print(json.dumps(p.as_dict()))"
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
    assert (5, 96) == (json.loads(result.stdout)["workers"], json.loads(result.stdout)["threads"])
