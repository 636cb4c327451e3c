"""`kitbuild verify` against the real engine, kitbuild/mysql and the mysite image.

The passing run and the negative control are the issue's acceptance checks: the first keeps
the promise, the second (the seed's static recipe forced through the environment) must
break it, with the failures counted. Every test also checks that nothing it started is left:
no container and no network carrying verify's label.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.verify.run import EXIT_PROMISE_FAILED
from builder.verify.stack import RUN_LABEL
from tests.integration.conftest import ROOT, Built

pytestmark = pytest.mark.docker

#: A mysite page that holds its database connection for 50 ms, so connections pile up.
SLOW_PAGE = "/db/sleep/?seconds=0.05"


def verify_cli(*argv: str) -> tuple[int, str, str]:
    """Run `kitbuild verify` in this process; return the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["verify", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def clean_engine(gateway: DockerGateway) -> DockerGateway:
    """The engine, with no verify leftovers before the test (and a check after it)."""
    assert [] == gateway.labelled(RUN_LABEL)
    return gateway


def test_mysite_keeps_its_promise(mysite_image: Built, clean_engine: DockerGateway) -> None:
    """`verify IMAGE --json` passes: peak within the budget, nothing refused, nothing failed."""
    code, out, err = verify_cli(mysite_image.tag, "--json", "--duration", "8", "--path", SLOW_PAGE)

    report = json.loads(out)
    assert 0 == code, err
    assert report["passed"] is True, report["failures"]
    assert 0 == report["failed"] == report["errors_1040"]
    assert report["requests"] > 100
    assert (
        report["load"]["concurrency"] == 5 * report["plan"]["workers"] * report["plan"]["threads"]
    )
    assert report["app_peak_connections"] <= report["budget"]
    assert report["max_used_connections"] >= report["app_connections_after_load"] > 0
    assert [] == clean_engine.labelled(RUN_LABEL)


def test_seed_recipe_breaks_the_promise_and_verify_says_so(
    mysite_image: Built, clean_engine: DockerGateway
) -> None:
    """The negative control: the seed's 5 x 96 threads, a connection per request, fails.

    The seed sized workers from the host (2 CPUs x 2 + 1 = 5) and threads from a budget of
    480 (480 / 5 = 96), against a server that allows 20. Verify must fail (exit 3) and count
    what went wrong: connections over the budget, refusals with 1040, failed requests.
    """
    code, out, err = verify_cli(
        mysite_image.tag,
        "--json",
        "--max-connections", "20",
        "--concurrency", "200",
        "--duration", "8",
        "--path", SLOW_PAGE,
        "--env", "GUNICORN_CMD_ARGS=--workers 5 --threads 96",
        "--env", "DATABASE_CONN_MAX_AGE=0",
    )  # fmt: skip

    report = json.loads(out)
    assert EXIT_PROMISE_FAILED == code, err
    assert report["passed"] is False
    assert report["failed"] > 0
    assert report["errors_1040"] > 0
    assert report["app_peak_connections"] > report["budget"]
    assert report["statuses"].get("500", 0) > 0
    assert len(report["failures"]) >= 3, report["failures"]
    assert [] == clean_engine.labelled(RUN_LABEL)


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
    argv: list[str], message: str, mysite_image: Built, clean_engine: DockerGateway
) -> None:
    """A server image neither here nor pullable, or a --path that answers 404 before any load.

    Either way: one line, exit 1, and nothing left behind.
    """
    code, out, err = verify_cli(mysite_image.tag, *argv)

    assert (1, "") == (code, out)
    assert message == err.splitlines()[-1]
    assert [] == clean_engine.labelled(RUN_LABEL)


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
    image: str, message: str, mysql_server_image: str, clean_engine: DockerGateway
) -> None:
    """A missing image, or one kitbuild did not build: one line, exit 1."""
    code, out, err = verify_cli(image)

    assert (1, "", f"kitbuild: error: {message}\n") == (code, out, err)
    assert [] == clean_engine.labelled(RUN_LABEL)


def test_app_that_cannot_start_is_reported_with_its_own_line(
    mysite_image: Built, clean_engine: DockerGateway
) -> None:
    """An app that exits at start (here: a bad setting) fails the run with the app's reason."""
    code, _, err = verify_cli(mysite_image.tag, "--env", "GUNICORN_TIMEOUT=never")

    assert 1 == code
    last = err.splitlines()[-1]
    assert last.startswith("kitbuild: error: `migrate` in ")
    assert "GUNICORN_TIMEOUT" in last
    assert [] == clean_engine.labelled(RUN_LABEL)


def test_docker_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine: one line naming the socket, exit 1."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")

    code, out, err = verify_cli("mysite:latest")

    assert (1, "") == (code, out)
    assert err.startswith("kitbuild: error: cannot reach the Docker engine at unix:///nonexistent")
    assert 1 == len(err.splitlines())


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_everything(
    signal_number: int, mysite_image: Built, clean_engine: DockerGateway
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
            assert len(clean_engine.labelled(RUN_LABEL)) >= 3  # server, app and network
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
    assert [] == clean_engine.labelled(RUN_LABEL)
