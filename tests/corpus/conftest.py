"""The corpus suite's fixtures: the engine's (shared with tests/integration) and the results.

The tests may run on several workers (pytest-xdist), and the summary is printed by the
process that runs none of them, so each test's result travels in its report's
``user_properties``; tests/conftest.py gathers them and prints the table at the end of the
run (and writes it as JSON to the file KIT_CORPUS_RESULTS names, when it is set).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.corpus.corpus import RESULT_PROPERTY, Result
from tests.integration.conftest import gateway, mysql_server_image

__all__ = ["corpus_results", "gateway", "mysql_server_image"]


@pytest.fixture(scope="session")
def corpus_results() -> dict[str, Result]:
    """What this process measured, per project (each test's report carries its own)."""
    return {}


@pytest.fixture(autouse=True)
def _report_result(
    request: pytest.FixtureRequest, corpus_results: dict[str, Result]
) -> Iterator[None]:
    """After a test, put its project's result in the test's report (read by the summary)."""
    yield
    callspec = getattr(request.node, "callspec", None)
    project = callspec.params.get("project") if callspec else None
    result = corpus_results.get(getattr(project, "name", ""))
    if result is not None:
        request.node.user_properties.append((RESULT_PROPERTY, dataclasses.asdict(result)))
