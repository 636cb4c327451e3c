"""Shared fixtures (checked-in cgroup trees), the corpus summary, and the suite's order.

The suite runs on several workers (``-n`` in pyproject.toml's addopts); which tests go
together, and which run alone at the end, is :mod:`tests.scheduling`'s business. The order
set here starts the longest work first, so no worker is left with a long module at the
end while the others idle.

Names, ports and networks are already per process: images are tagged under a random
repository (tests/integration/conftest.py), stacks and containers carry random suffixes,
and published ports are chosen by the engine or probed free.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.corpus.corpus import RESULT_PROPERTY, Result, as_json, table
from tests.scheduling import KitScheduling

if TYPE_CHECKING:
    from collections.abc import Callable

#: pytester runs small suites of its own (tests/test_scheduling.py deals one).
pytest_plugins = ("pytester",)

FIXTURES = Path(__file__).parent / "fixtures"

#: The corpus results the reports carried, by project (gathered where the summary prints).
_CORPUS_RESULTS: dict[str, Result] = {}


@pytest.fixture(name="cgroup_root")
def _cgroup_root() -> Callable[[str], Path]:
    """Return a function mapping a fixture tree's name to its directory."""

    def root(name: str) -> Path:
        path = FIXTURES / "cgroup" / name
        assert path.is_dir(), f"no cgroup fixture {name}"
        return path

    return root


def _start_order(item: pytest.Item) -> int:
    """0 for the corpus, 1 other Docker tests (builds, stacks), 2 the rest."""
    if item.get_closest_marker("corpus"):
        return 0
    if item.get_closest_marker("docker"):
        return 1
    return 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest work first; a module's own order is kept (the sort is stable)."""
    items.sort(key=_start_order)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> KitScheduling | None:
    """Deal the tests with kitbuild's scheduler when the run asks for ``--dist loadfile``."""
    if config.getvalue("dist") != "loadfile":
        return None
    return KitScheduling(config, log)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep each corpus project's newest result from the reports, on whichever worker it ran."""
    if report.when != "teardown":
        return
    for name, value in report.user_properties:
        if name == RESULT_PROPERTY and isinstance(value, dict):
            _CORPUS_RESULTS[str(value["name"])] = Result(**value)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the corpus table (and write it as JSON to KIT_CORPUS_RESULTS) when it ran."""
    if not _CORPUS_RESULTS:
        return
    ordered = sorted(_CORPUS_RESULTS.values(), key=lambda result: result.name)
    terminalreporter.write_sep("=", "kitbuild corpus")
    terminalreporter.write_line(table(ordered))
    target = os.environ.get("KIT_CORPUS_RESULTS")
    if target:
        Path(target).write_text(json.dumps(as_json(ordered), indent=2) + "\n")
