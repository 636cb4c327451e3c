"""The README's promises about the project's own files."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _readme_commands() -> list[str]:
    setup = (ROOT / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", setup)


def test_readme_has_exactly_two_setup_commands() -> None:
    """Set up is two commands: install and run, then the tests."""
    assert 2 == len(_readme_commands())


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run runs exactly the test command the README gives users."""
    test_command = _readme_commands()[1]

    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
