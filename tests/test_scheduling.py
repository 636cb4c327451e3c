"""How a parallel run deals tests: units, the lone phase (tests/scheduling.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scheduling import runs_alone, unit_of

#: A test that records which worker ran it, and when it started and ended.
_RECORDING_TEST = """
import json, os, time
from pathlib import Path

def test_{name}():
    started = time.monotonic()
    time.sleep({seconds})
    line = {{"test": "{module}::{name}", "worker": os.environ["PYTEST_XDIST_WORKER"],
             "started": started, "ended": time.monotonic()}}
    with open(Path(os.environ["RECORD"]), "a") as record:
        record.write(json.dumps(line) + "\\n")
"""


def test_a_module_is_one_unit() -> None:
    """By default a test belongs to its module's unit, whatever its class or parameters."""
    assert "tests/integration/test_runtime.py" == unit_of(
        "tests/integration/test_runtime.py::TestOverload::test_budget[4]"
    )


def test_a_corpus_project_is_one_unit() -> None:
    """A corpus project's build and pages are one unit, apart from the other projects'."""
    build = unit_of("tests/corpus/test_corpus.py::test_builds_unmodified[ephios]")
    pages = unit_of("tests/corpus/test_corpus.py::test_pages_answer_as_listed[ephios]")
    other = unit_of("tests/corpus/test_corpus.py::test_pages_answer_as_listed[nucleus]")

    assert build == pages
    assert other != pages


def test_independent_builds_are_a_unit_each() -> None:
    """test_image_build's tests share only session fixtures: each is a unit of its own."""
    nodeid = "tests/integration/test_image_build.py::test_fixture_projects_build[dburl-app]"

    assert nodeid == unit_of(nodeid)


def test_the_load_timed_modules_run_alone() -> None:
    """The Swarm and fault modules run alone; a build module does not."""
    assert runs_alone(unit_of("tests/integration/test_swarm.py::test_rolling_update"))
    assert runs_alone(unit_of("tests/integration/test_faults.py::test_restart"))
    assert not runs_alone(unit_of("tests/integration/test_image_build.py::test_x"))


def test_lone_modules_start_after_every_other_test_ended_on_one_worker(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three workers: the other tests overlap; the lone ones run last, one worker, nothing beside.

    A small suite laid out like kitbuild's (so the scheduler's module names apply) runs
    with this repository's scheduler; each test records its worker and its times.
    """
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("RECORD", str(record))
    pytester.makeconftest(
        "from tests.scheduling import KitScheduling\n"
        "def pytest_xdist_make_scheduler(config, log):\n"
        "    return KitScheduling(config, log)\n"
    )
    integration = pytester.path / "tests" / "integration"
    integration.mkdir(parents=True)
    modules = {
        "test_swarm": {"rolling": 0.3, "scale": 0.3},
        "test_faults": {"restart": 0.3},
        "test_builds_one": {"a": 1.0, "b": 1.0},
        "test_builds_two": {"c": 1.0, "d": 1.0},
        "test_builds_three": {"e": 1.0},
    }
    for module, tests in modules.items():
        source = "".join(
            _RECORDING_TEST.format(name=name, seconds=seconds, module=module)
            for name, seconds in tests.items()
        )
        (integration / f"{module}.py").write_text(source)
    # The scheduler is imported from this repository (its tests/ and the small suite's
    # tests/ are both namespace portions, so tests.scheduling resolves here).
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent.parent))

    result = pytester.runpytest_subprocess(
        "-n", "3", "--dist", "loadfile", "-p", "no:cacheprovider", "tests"
    )

    assert 0 == result.ret, result.stdout.str()
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    alone = [line for line in lines if line["test"].startswith(("test_swarm", "test_faults"))]
    others = [line for line in lines if line not in alone]
    assert 3 == len(alone)
    assert 1 == len({line["worker"] for line in alone})
    assert min(line["started"] for line in alone) >= max(line["ended"] for line in others)
    assert 1 < len({line["worker"] for line in others})  # the rest did run in parallel
