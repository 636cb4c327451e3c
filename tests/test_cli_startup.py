"""``kitbuild --version`` and ``--help`` import no command, so they answer at once."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from builder.commands import COMMANDS

_PROBE = """
import contextlib, io, json, sys
from builder import cli
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    cli.main({argv!r}, stdout=out, stderr=out)
heavy = sorted(m for m in ("docker", "jinja2", "testcontainers", "builder.commands.build",
    "builder.commands.verify", "builder.engine") if m in sys.modules)
print(json.dumps({{"heavy": heavy, "out": out.getvalue()}}))
"""


def _run(argv: list[str]) -> dict[str, object]:
    """Run the CLI in a fresh interpreter and report which heavy modules it imported."""
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return report


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_command(argv: list[str]) -> None:
    """Neither imports a command module, Docker's SDK or Jinja2: they only print."""
    report = _run(argv)

    assert [] == report["heavy"]
    assert "kitbuild" in str(report["out"])


def test_help_lists_every_command_with_its_summary() -> None:
    """The top-level help names each command and its summary without importing it."""
    report = _run(["--help"])

    words = " ".join(str(report["out"]).split())  # argparse wraps the summaries
    for entry in COMMANDS.values():
        assert f"{entry.name} {entry.summary}" in words


def test_a_command_imports_only_its_own_module() -> None:
    """``kitbuild plan --help`` imports the plan command, not build's or verify's."""
    report = _run(["plan", "--help"])

    assert [] == report["heavy"]
    assert "--cpus" in str(report["out"])
