"""The corpus suite's fixtures: the engine's (shared with tests/integration) and the results.

The results table is printed at the end of the run, whatever passed, and written as JSON
to the file KIT_CORPUS_RESULTS names, when it is set (the README's table comes from it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.corpus.corpus import Result, as_json, table
from tests.integration.conftest import gateway, mysql_server_image

__all__ = ["corpus_results", "gateway", "mysql_server_image"]

_RESULTS = pytest.StashKey[dict[str, Result]]()


@pytest.fixture(scope="session")
def corpus_results(request: pytest.FixtureRequest) -> dict[str, Result]:
    """What the suite measured, per project, kept for the end-of-run summary."""
    return request.config.stash.setdefault(_RESULTS, {})


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the measured table (and write it as JSON) when corpus tests ran."""
    results = terminalreporter.config.stash.get(_RESULTS, {})
    if not results:
        return
    ordered = list(results.values())
    terminalreporter.write_sep("=", "kitbuild corpus")
    terminalreporter.write_line(table(ordered))
    target = os.environ.get("KIT_CORPUS_RESULTS")
    if target:
        Path(target).write_text(json.dumps(as_json(ordered), indent=2) + "\n")
