"""`kitbuild verify` against the real engine, kitbuild/mysql and the mysite image.

The passing run and the negative control are the issue's acceptance checks: the first keeps
the promise, the second (the seed's static recipe forced through the environment) must
break it, with the failures counted. Each runs once for the module, with --json, --report
and --junit, and the tests read its report, its page (also in headless Chromium, where it
is installed) and its JUnit XML. Every run also checks that nothing it started is left: no
container and no network carrying its own run's label, which its progress names (other
sessions may run verify on the same engine at the same time).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.verify import page as report_page
from builder.verify.run import EXIT_PROMISE_FAILED
from builder.verify.stack import RUN_LABEL
from tests.browser import needs_chromium, open_page, read_png
from tests.integration.conftest import ROOT, Built
from tests.report_pages import read_page

pytestmark = pytest.mark.docker

#: A mysite page that holds its database connection for 50 ms, so connections pile up.
SLOW_PAGE = "/db/sleep/?seconds=0.05"


def verify_cli(*argv: str) -> tuple[int, str, str]:
    """Run `kitbuild verify` in this process; return the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["verify", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


#: The progress line that names a run's label, so a test checks its own run's leftovers
#: (other sessions may be running verify on the same engine at the same time).
RUN_LINE = re.compile(r"carry the label io\.kitbuild\.verify=(\w+)")


def left_by(gateway: DockerGateway, err: str) -> list[str]:
    """The containers and network that the run whose progress is ``err`` left behind.

    A run stopped before its first container (a missing image) names no label: it left
    nothing, since nothing was started.
    """
    found = RUN_LINE.search(err)
    return [] if found is None else gateway.labelled(RUN_LABEL, found[1])


@dataclasses.dataclass(frozen=True)
class VerifyRun:
    """One `kitbuild verify --json --report --junit` run and the files it wrote."""

    code: int
    err: str
    report: dict[str, Any]
    html: Path
    junit: Path


def run_with_files(gateway: DockerGateway, directory: Path, *argv: str) -> VerifyRun:
    """Run verify with --json, --report and --junit into ``directory``; nothing may be left."""
    html, junit = directory / "report.html", directory / "junit.xml"
    code, out, err = verify_cli(*argv, "--json", "--report", str(html), "--junit", str(junit))
    assert RUN_LINE.search(err), err
    assert [] == left_by(gateway, err)
    return VerifyRun(code, err, json.loads(out), html, junit)


@pytest.fixture(scope="module")
def passing_run(
    mysite_image: Built, gateway: DockerGateway, tmp_path_factory: pytest.TempPathFactory
) -> VerifyRun:
    """Mysite under its own plan, 8 s at the slow page: the run that keeps the promise."""
    return run_with_files(
        gateway,
        tmp_path_factory.mktemp("passing"),
        mysite_image.tag,
        "--duration", "8",
        "--path", SLOW_PAGE,
    )  # fmt: skip


@pytest.fixture(scope="module")
def seed_run(
    mysite_image: Built, gateway: DockerGateway, tmp_path_factory: pytest.TempPathFactory
) -> VerifyRun:
    """The negative control: the seed's 5 x 96 threads, a connection per request.

    The seed sized workers from the host (2 CPUs x 2 + 1 = 5) and threads from a budget of
    480 (480 / 5 = 96), against a server that allows 20.
    """
    return run_with_files(
        gateway,
        tmp_path_factory.mktemp("seed"),
        mysite_image.tag,
        "--max-connections", "20",
        "--concurrency", "200",
        "--duration", "8",
        "--path", SLOW_PAGE,
        "--env", "GUNICORN_CMD_ARGS=--workers 5 --threads 96",
        "--env", "DATABASE_CONN_MAX_AGE=0",
    )  # fmt: skip


def test_mysite_keeps_its_promise(passing_run: VerifyRun) -> None:
    """`verify IMAGE --json` passes: peak within the budget, nothing refused, nothing failed."""
    report = passing_run.report
    assert 0 == passing_run.code, passing_run.err
    assert report["passed"] is True, report["failures"]
    assert 0 == report["failed"] == report["errors_1040"]
    assert report["requests"] > 100
    assert (
        report["load"]["concurrency"] == 5 * report["plan"]["workers"] * report["plan"]["threads"]
    )
    assert report["app_peak_connections"] <= report["budget"]
    assert report["max_used_connections"] >= report["app_connections_after_load"] > 0


def test_seed_recipe_breaks_the_promise_and_verify_says_so(seed_run: VerifyRun) -> None:
    """The negative control fails (exit 3) and counts what went wrong.

    Connections over the budget, refusals with 1040, failed requests.
    """
    report = seed_run.report
    assert EXIT_PROMISE_FAILED == seed_run.code, seed_run.err
    assert report["passed"] is False
    assert report["failed"] > 0
    assert report["errors_1040"] > 0
    assert report["app_peak_connections"] > report["budget"]
    assert report["statuses"].get("500", 0) > 0
    assert len(report["failures"]) >= 3, report["failures"]


def test_report_draws_one_point_per_second_of_the_run_and_the_plans_budget(
    passing_run: VerifyRun,
) -> None:
    """The page's series hold one server reading per second of the load; the rule is the budget.

    Every second was read (no gaps), the readings end where the server's own figures do,
    and every request is in exactly one second.
    """
    report, page = passing_run.report, read_page(passing_run.html.read_text())
    timeline = report["timeline"]
    points = timeline["points"]

    assert 1.0 == timeline["interval"]
    assert abs(timeline["seconds"] - report["load"]["seconds"]) < 0.5
    assert max(1, round(timeline["seconds"])) == len(points) == page.sampled_points
    assert len(points) >= 8
    assert all(len(points) == len(values) for values in page.series.values()), page.series
    assert [p["app_connections"] for p in points] == page.series["app_connections"]
    assert None not in page.series["app_connections"]
    assert report["plan"]["budget"] == report["budget"] == page.rules["budget"]
    assert report["app_peak_connections"] == points[-1]["app_high_water"]
    assert max(c for c in page.series["app_connections"] if c is not None) <= report["budget"]
    assert report["requests"] == sum(p["requests"] for p in points)
    assert (True, 4) == (page.passed, len(page.charts))


def test_junit_of_a_passing_run_has_three_passing_cases(passing_run: VerifyRun) -> None:
    """The XML parses; one case per promise; none failed."""
    root = ElementTree.parse(passing_run.junit).getroot()

    assert ["budget held", "no error 1040", "every request answered"] == [
        case.get("name") for case in root.iter("testcase")
    ]
    assert ("3", "0", []) == (root.get("tests"), root.get("failures"), root.findall(".//failure"))


def test_negative_control_report_and_junit_show_every_failure(seed_run: VerifyRun) -> None:
    """The seed's recipe: three failing cases naming the run's numbers; the page says FAIL.

    The timeline accounts for every refusal and failed request the verdict counts.
    """
    report, page = seed_run.report, read_page(seed_run.html.read_text())
    root = ElementTree.parse(seed_run.junit).getroot()
    messages = {
        case.get("name"): failure.get("message", "")
        for case in root.iter("testcase")
        if (failure := case.find("failure")) is not None
    }
    points = report["timeline"]["points"]

    assert "3" == root.get("failures")
    assert messages["budget held"] == (
        f"the app held {report['app_peak_connections']} connections at once, "
        f"over its budget of {report['budget']}"
    )
    assert f"the server refused {report['errors_1040']} connections" in messages["no error 1040"]
    assert messages["every request answered"].startswith(
        f"{report['failed']} of {report['requests']} requests failed"
    )
    assert report["errors_1040"] == sum(p["errors_1040"] for p in points)
    assert report["failed"] == sum(p["failed"] for p in points)
    assert (False, {False}) == (page.passed, set(page.promises.values()))
    assert report["budget"] == page.rules["budget"] == 17


@needs_chromium
@pytest.mark.browser
@pytest.mark.parametrize("run_name", ["passing_run", "seed_run"])
def test_report_renders_its_charts_in_chromium(
    run_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Headless Chromium opens the page: no console errors, no network, the charts drawn.

    The charts' own colours must be on the screenshot (each is used by a chart line only),
    and the verdict's banner colour says pass or fail. KITBUILD_SCREENSHOTS=DIR keeps the
    screenshots (docs/ holds the ones docs/verify.md shows).
    """
    run: VerifyRun = request.getfixturevalue(run_name)

    rendering = open_page(run.html, tmp_path / f"{run_name}.png")
    picture = read_png(rendering.screenshot)

    assert ([], []) == (rendering.console, rendering.requests)
    assert (1280, 1900) == (picture.width, picture.height)
    for colour in (report_page.RED, report_page.GREEN, report_page.BLUE, report_page.ORANGE):
        assert picture.count(colour, tolerance=12) > 150, colour
    banner = "#1e7b34" if run.report["passed"] else "#b00020"
    assert picture.count(banner, tolerance=4) > 40_000
    if keep := os.environ.get("KITBUILD_SCREENSHOTS"):
        name = "verify-report-pass.png" if run.report["passed"] else "verify-report-fail.png"
        shutil.copyfile(rendering.screenshot, Path(keep) / name)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--database-image", "kitbuild-absent/mysql:8.4"],
            "kitbuild: error: database image kitbuild-absent/mysql:8.4 is not here and cannot "
            "be pulled: pull it where a registry answers, or use kitbuild/mysql:latest "
            "(`kitbuild base`)",
        ),
        (
            ["--path", "/no/such/page/"],
            "kitbuild: error: GET /no/such/page/ answered 404 before any load: pass --path a "
            "page of the project that uses the database (the default /healthz always does)",
        ),
    ],
    ids=["server image that cannot be had", "page that is not found"],
)
def test_a_run_that_cannot_be_made_stops_with_one_line(
    argv: list[str], message: str, mysite_image: Built, gateway: DockerGateway
) -> None:
    """A server image neither here nor pullable, or a --path that answers 404 before any load.

    Either way: one line, exit 1, and nothing left behind.
    """
    code, out, err = verify_cli(mysite_image.tag, *argv)

    assert (1, "") == (code, out)
    assert message == err.splitlines()[-1]
    assert [] == left_by(gateway, err)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "kitbuild-test/no-such-image:1",
            "image kitbuild-test/no-such-image:1 not found locally: build it with "
            "`kitbuild PROJECT --tag kitbuild-test/no-such-image:1`",
        ),
        (
            "kitbuild/mysql:latest",
            "kitbuild/mysql:latest is not a kitbuild image (it has no io.kitbuild.version "
            "label): build it with `kitbuild PROJECT`",
        ),
    ],
)
def test_images_that_cannot_be_verified(
    image: str, message: str, mysql_server_image: str, gateway: DockerGateway
) -> None:
    """A missing image, or one kitbuild did not build: one line, exit 1."""
    code, out, err = verify_cli(image)

    assert (1, "", f"kitbuild: error: {message}\n") == (code, out, err)
    assert [] == left_by(gateway, err)


def test_app_that_cannot_start_is_reported_with_its_own_line(
    mysite_image: Built, gateway: DockerGateway
) -> None:
    """An app that exits at start (here: a bad setting) fails the run with the app's reason."""
    code, _, err = verify_cli(mysite_image.tag, "--env", "GUNICORN_TIMEOUT=never")

    assert 1 == code
    last = err.splitlines()[-1]
    assert last.startswith("kitbuild: error: `migrate` in ")
    assert "GUNICORN_TIMEOUT" in last
    assert [] == left_by(gateway, err)


def test_docker_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine: one line naming the socket, exit 1."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    code, out, err = verify_cli("mysite:latest")

    assert (1, "") == (code, out)
    assert err.startswith("kitbuild: error: cannot reach the Docker engine at unix:///nonexistent")
    assert 1 == len(err.splitlines())


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_everything(
    signal_number: int, mysite_image: Built, gateway: DockerGateway
) -> None:
    """Ctrl-C (or SIGTERM) in the middle of the load: exit 130, every container removed."""
    with subprocess.Popen(
        [sys.executable, "-m", "builder", "verify", mysite_image.tag, "--duration", "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"},
    ) as process:
        try:
            assert process.stderr is not None
            seen = []
            for line in process.stderr:  # wait until the load has started
                seen.append(line)
                if " clients on GET " in line:
                    break
            else:
                pytest.fail(f"the run ended before its load: {''.join(seen)}")
            started = "".join(seen)
            assert RUN_LINE.search(started), started
            assert len(left_by(gateway, started)) >= 3  # server, app and network
            time.sleep(2)
            process.send_signal(signal_number)
            _, err = process.communicate(timeout=90)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()

    assert 130 == process.returncode
    assert err.rstrip().endswith("kitbuild: interrupted")
    assert "Traceback" not in err
    assert [] == left_by(gateway, started)
