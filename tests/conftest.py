"""Shared fixtures (checked-in cgroup trees), and how a parallel run (pytest-xdist) deals tests.

The suite runs on several workers (``-n`` in pyproject.toml's addopts). Docker tests spend
most of their time waiting on containers, so they overlap well, but two things must hold:

- Tests that share a module- or class-scoped fixture (a compose stack, a server, a swarm)
  run on one worker, so the fixture is made once: they get the module as their
  ``xdist_group``. Every other test is dealt on its own.
- The longest work starts first, so no worker is left with a long module at the end while
  the others idle: the Swarm module, then the corpus, then other Docker tests, then the rest.

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

if TYPE_CHECKING:
    from collections.abc import Callable

FIXTURES = Path(__file__).parent / "fixtures"

#: The corpus results the reports carried, by project (gathered where the summary prints).
_CORPUS_RESULTS: dict[str, Result] = {}

#: Scopes whose fixtures are made once per module (or class) on the worker that runs them.
_SHARED_SCOPES = frozenset({"module", "class", "package"})


@pytest.fixture(name="cgroup_root")
def _cgroup_root() -> Callable[[str], Path]:
    """Return a function mapping a fixture tree's name to its directory."""

    def root(name: str) -> Path:
        path = FIXTURES / "cgroup" / name
        assert path.is_dir(), f"no cgroup fixture {name}"
        return path

    return root


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a module-, class- or package-scoped fixture."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for name in info.names_closure:
        definitions = info.name2fixturedefs.get(name, ())
        if definitions and definitions[-1].scope in _SHARED_SCOPES:
            return True
    return False


def _start_order(item: pytest.Item) -> int:
    """0 for the Swarm tests, 1 the corpus, 2 other Docker tests, 3 the rest."""
    if item.get_closest_marker("swarm"):
        return 0
    if item.get_closest_marker("corpus"):
        return 1
    if item.get_closest_marker("docker"):
        return 2
    return 3


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group the tests that share a fixture by module, and put the longest work first."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and _shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=_start_order)  # stable: a module's own order is kept


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
