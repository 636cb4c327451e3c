"""`kitbuild verify`'s pure parts: option checks, the judge and the report (no Docker)."""

from __future__ import annotations

import io
import json

import pytest

from builder import cli, verify
from builder.load import LoadResult, Sample
from builder.verify_stack import VerifyError

PLAN = {
    "event": "kitbuild.plan",
    "workers": 3,
    "threads": 12,
    "peak_connections_all": 36,
    "max_connections": 40,
    "reserved": 3,
    "budget": 37,
}


def load_of(*statuses: int | None, errors: int = 0) -> LoadResult:
    """A load result with one sample per status (None: no answer) plus ``errors`` resets."""
    samples = [Sample(float(n), float(n) + 0.1, status=s) for n, s in enumerate(statuses)]
    samples += [
        Sample(100.0 + n, 100.5 + n, error="ConnectionResetError", phase="receive")
        for n in range(errors)
    ]
    return LoadResult(tuple(samples), concurrency=10, seconds=10.0)


def measured(**changes: object) -> verify.Measurements:
    """Measurements of a good run, with ``changes`` applied."""
    values: dict[str, object] = {
        "plan": PLAN,
        "load": load_of(200, 200, 200),
        "max_used_connections": 37,
        "refused_1040": 0,
        "app_connections_after": 36,
        "app_running": True,
    }
    values.update(changes)
    return verify.Measurements(**values)  # type: ignore[arg-type]


def test_good_run_passes() -> None:
    """Within budget, nothing refused, every request answered: pass, no reasons."""
    assert verify.Verdict(True, ()) == verify.judge(measured())


def test_monitor_session_is_not_counted_against_the_app() -> None:
    """A high-water mark of budget + 1 is the app at its budget plus verify's own session."""
    assert verify.judge(measured(max_used_connections=38)).passed
    verdict = verify.judge(measured(max_used_connections=39))
    assert not verdict.passed
    assert ("the app held 38 connections at once, over its budget of 37",) == verdict.failures


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"refused_1040": 5}, "the server refused 5 connections with error 1040"),
        ({"load": load_of(200, 500, 500)}, "2 of 3 requests failed (statuses 200: 1, 500: 2"),
        ({"load": load_of(200, errors=2)}, "no answer receive:ConnectionResetError: 2"),
        ({"load": load_of(503)}, "no request was answered"),
        ({"app_running": False}, "the app container stopped during the run"),
    ],
)
def test_each_broken_promise_fails_with_its_reason(changes: dict[str, object], reason: str) -> None:
    """Refused connections, failed requests, no answers or a dead app each fail the run."""
    verdict = verify.judge(measured(**changes))

    assert not verdict.passed
    assert any(reason in failure for failure in verdict.failures), verdict.failures


def test_report_as_json_and_text() -> None:
    """The report carries the figures the issue asks for, in JSON and in text."""
    options = verify.VerifyOptions(image="mysite:latest", path="/db/")
    report = verify.Report(options, 180, measured(), verify.judge(measured()))

    data = json.loads(json.dumps(report.as_dict()))
    text = report.as_text()

    assert {
        "requests": 3,
        "failed": 0,
        "requests_per_second": 0.3,
        "max_used_connections": 37,
        "app_peak_connections": 36,
        "budget": 37,
        "errors_1040": 0,
        "passed": True,
    }.items() <= data.items()
    assert "event" not in data["plan"]
    assert data["load"] == {"path": "/db/", "concurrency": 180, "duration": 15.0, "seconds": 10.0}
    assert "3 workers x 12 threads" in text
    assert "verdict   PASS" in text


def test_options_are_parsed_and_env_pairs_kept() -> None:
    """Strings from the command line become typed options; NAME=VALUE keeps '=' in values."""
    options = verify.parse_options(
        "app:1",
        max_connections="60",
        cpus="0.5",
        duration="5",
        concurrency="50",
        env=["GUNICORN_CMD_ARGS=--workers=5", "EMPTY="],
        host_cpus=2,
    )

    assert (60, 0.5, 5.0, 50) == (
        options.max_connections,
        options.cpus,
        options.duration,
        options.concurrency,
    )
    assert {"GUNICORN_CMD_ARGS": "--workers=5", "EMPTY": ""} == options.environment


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_connections", "9", "--max-connections 9: use 10 to 100000"),
        ("max_connections", "many", "--max-connections 'many': give a whole number"),
        ("cpus", "0", "--cpus 0: use a number from 0.01 to 2"),
        ("cpus", "3", "--cpus 3: use a number from 0.01 to 2"),
        ("cpus", "nan", "--cpus 'nan' is not a finite number"),
        ("duration", "0", "--duration 0: use 1 to 600 seconds"),
        ("duration", "1h", "--duration '1h' is not a number"),
        ("concurrency", "0", "--concurrency 0: use 1 to 1000"),
        ("concurrency", "2.5", "--concurrency '2.5': give a whole number"),
        ("path", "db/", "--path 'db/': give a path such as /healthz"),
        ("env", ["NO_EQUALS"], "--env 'NO_EQUALS': write it as NAME=VALUE"),
        ("env", ["1X=2"], "--env '1X=2': write it as NAME=VALUE"),
    ],
)
def test_bad_options_are_one_clear_line(option: str, value: object, message: str) -> None:
    """Each bad option is refused before anything starts, naming the option and the fix."""
    with pytest.raises(VerifyError) as raised:
        verify.parse_options("app:1", host_cpus=2, **{option: value})  # type: ignore[arg-type]

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_cli_bad_option_exits_1_before_touching_docker() -> None:
    """The command line reports a bad option as one line and exit 1, with no Docker needed."""
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["verify", "app:1", "--duration", "-3"], stdout=out, stderr=err)

    assert (1, "") == (code, out.getvalue())
    assert "kitbuild: error: --duration -3: use 1 to 600 seconds\n" == err.getvalue()
