"""`kitbuild verify`'s pure parts: option checks, the judge and the report (no Docker)."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TypedDict, Unpack

import pytest

from builder import cli
from builder.errors import VerifyError
from builder.verify.judge import (
    BUDGET_HELD,
    EVERY_REQUEST_ANSWERED,
    NO_1040,
    Measurements,
    judge,
)
from builder.verify.load import LoadResult, Sample
from builder.verify.options import VerifyOptions, parse_options
from builder.verify.report import Report
from builder.verify.run import run_verify
from tests.verify_reports import PLAN


def load_of(*statuses: int | None, errors: int = 0) -> LoadResult:
    """A load result with one sample per status (None: no answer) plus ``errors`` resets."""
    samples = [Sample(float(n), float(n) + 0.1, status=s) for n, s in enumerate(statuses)]
    samples += [
        Sample(100.0 + n, 100.5 + n, error="ConnectionResetError", phase="receive")
        for n in range(errors)
    ]
    return LoadResult(tuple(samples), concurrency=10, seconds=10.0)


class Changes(TypedDict, total=False):
    """What a test changes in the measurements of a good run."""

    load: LoadResult
    max_used_connections: int
    refused_1040: int
    app_connections_after: int
    app_running: bool


def measured(**changes: Unpack[Changes]) -> Measurements:
    """Measurements of a good run, with ``changes`` applied."""
    good = Measurements(
        plan=PLAN,
        load=load_of(200, 200, 200),
        max_used_connections=37,
        refused_1040=0,
        app_connections_after=36,
        app_running=True,
    )
    return dataclasses.replace(good, **changes)


def test_good_run_passes() -> None:
    """Within budget, nothing refused, every request answered: pass, no reasons."""
    verdict = judge(measured())

    assert (True, ()) == (verdict.passed, verdict.failures)
    assert [BUDGET_HELD, NO_1040, EVERY_REQUEST_ANSWERED] == [p.name for p in verdict.promises]
    assert all(promise.held for promise in verdict.promises)


def test_each_promise_names_its_figures_whether_it_held_or_not() -> None:
    """Every promise carries the numbers it was judged on, so a pass says how close it came."""
    held = {p.name: p.figures for p in judge(measured()).promises}
    broken = {
        p.name: p
        for p in judge(
            measured(max_used_connections=50, refused_1040=7, load=load_of(200, 500))
        ).promises
    }

    assert {
        BUDGET_HELD: "the app's peak: 36 connections (Max_used_connections 37 less 1 verify "
        "session); budget 37",
        NO_1040: "connections refused with error 1040 during the run: 0",
        EVERY_REQUEST_ANSWERED: "3 requests: 3 answered 2xx, 0 not; the app ran throughout",
    } == held
    assert ("the app held 49 connections at once, over its budget of 37",) == broken[
        BUDGET_HELD
    ].failures
    assert ("the server refused 7 connections with error 1040 (Too many connections)",) == broken[
        NO_1040
    ].failures
    assert ("1 of 2 requests failed (statuses 200: 1, 500: 1; no answer none)",) == broken[
        EVERY_REQUEST_ANSWERED
    ].failures


def test_verdict_failures_are_the_promises_failures_in_order() -> None:
    """The flat list of reasons (text and JSON) is every broken promise's, budget first."""
    verdict = judge(
        measured(max_used_connections=50, refused_1040=2, load=load_of(500), app_running=False)
    )

    assert verdict.failures == tuple(f for p in verdict.promises for f in p.failures)
    assert 5 == len(verdict.failures)
    assert not any(promise.held for promise in verdict.promises)


def test_monitor_session_is_not_counted_against_the_app() -> None:
    """A high-water mark of budget + 1 is the app at its budget plus verify's own session."""
    assert judge(measured(max_used_connections=38)).passed
    verdict = judge(measured(max_used_connections=39))
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
def test_each_broken_promise_fails_with_its_reason(changes: Changes, reason: str) -> None:
    """Refused connections, failed requests, no answers or a dead app each fail the run."""
    verdict = judge(measured(**changes))

    assert not verdict.passed
    assert any(reason in failure for failure in verdict.failures), verdict.failures


def test_report_as_json_and_text() -> None:
    """The report carries the figures the issue asks for, in JSON and in text."""
    options = VerifyOptions(image="mysite:latest", path="/db/")
    report = Report(options, 180, measured(), judge(measured()))

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


def test_json_report_keeps_every_earlier_key() -> None:
    """The JSON report only grows: every key scripts read before the timeline is still there."""
    report = Report(VerifyOptions(image="mysite:latest"), 180, measured(), judge(measured()))

    data = report.as_dict()

    assert {
        "image", "database_image", "max_connections", "cpus", "plan", "load", "requests", "ok",
        "failed", "statuses", "no_answer", "requests_per_second", "latency_p50", "latency_p99",
        "max_used_connections", "monitor_sessions", "app_peak_connections", "budget",
        "errors_1040", "app_connections_after_load", "app_running", "passed", "failures",
    } <= data.keys()  # fmt: skip
    assert {"promises", "timeline"} <= data.keys()
    assert {"interval": 0.0, "seconds": 0.0, "points": []} == data["timeline"]


def test_options_are_parsed_and_env_pairs_kept() -> None:
    """Strings from the command line become typed options; NAME=VALUE keeps '=' in values."""
    options = parse_options(
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


class Given(TypedDict, total=False):
    """Options of :func:`parse_options` as the command line gives them, text unchecked."""

    max_connections: str
    cpus: str
    duration: str
    concurrency: str
    path: str
    env: list[str]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"max_connections": "9"},
            "--max-connections='9' is out of range: the server's max_connections, 10 to 100000",
        ),
        ({"max_connections": "many"}, "--max-connections='many' is not a whole number"),
        ({"cpus": "0"}, "--cpus='0' is not a CPU count: use a number from 0.01 to 2"),
        ({"cpus": "3"}, "--cpus='3' is not a CPU count: use a number from 0.01 to 2"),
        ({"cpus": "nan"}, "--cpus='nan' is not a CPU count"),
        ({"duration": "0"}, "--duration='0' is out of range: seconds of load, 1 to 600"),
        ({"duration": "1h"}, "--duration='1h' is not a number"),
        ({"concurrency": "0"}, "--concurrency='0' is out of range: clients at once, 1 to 1000"),
        ({"concurrency": "2.5"}, "--concurrency='2.5' is not a whole number"),
        ({"path": "db/"}, "--path 'db/': give a path such as /healthz"),
        ({"env": ["NO_EQUALS"]}, "--env 'NO_EQUALS': write it as NAME=VALUE"),
        ({"env": ["1X=2"]}, "--env '1X=2': write it as NAME=VALUE"),
    ],
)
def test_bad_options_are_one_clear_line(given: Given, message: str) -> None:
    """Each bad option is refused before anything starts, naming the option and the fix."""
    with pytest.raises(VerifyError) as raised:
        parse_options("app:1", host_cpus=2, **given)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_cli_bad_option_exits_1_before_touching_docker() -> None:
    """The command line reports a bad option as one line and exit 1, with no Docker needed."""
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["verify", "app:1", "--duration", "-3"], stdout=out, stderr=err)

    assert (1, "") == (code, out.getvalue())
    assert (
        "kitbuild: error: --duration='-3' is out of range: seconds of load, 1 to 600\n"
        == err.getvalue()
    )


# ----------------------------------------------------------- run_verify, with fakes wired in


class FakeApp:
    """An app answering on a real local port, with the plan above."""

    def __init__(self, port: int) -> None:
        """Answer on ``port``."""
        self.port = port
        self.record = PLAN


class FakeStack:
    """Records the stages; its app is a real local HTTP server answering ``status``."""

    def __init__(self, port: int) -> None:
        """Serve on ``port``."""
        self.port = port
        self.calls: list[str] = []

    def start_database(self, image: str, max_connections: int, credentials: object) -> None:
        """Record the start."""
        self.calls.append(f"database {image} {max_connections}")

    def run_migrate(self, image: str, environment: Mapping[str, str], *, timeout: float) -> None:
        """Record the migration, with the limit the app is told."""
        self.calls.append(f"migrate {environment['DATABASE_MAX_CONNECTIONS']}")

    def start_app(self, image: str, environment: object, *, cpus: float, timeout: float) -> FakeApp:
        """Record the start."""
        self.calls.append(f"app {image} {cpus:g}")
        return FakeApp(self.port)

    def server_port(self) -> int:
        """Any port: the fake monitor does not connect."""
        return 3306

    def app_running(self) -> bool:
        """Still up."""
        return True

    def close(self) -> None:
        """Record the cleanup."""
        self.calls.append("close")


class FakeMonitor:
    """Server counters: the app held 36 connections, and nothing was refused unless asked.

    Each reading of several counters (the sampler's) reports one more open connection than
    the last, and ``refusals_per_reading`` more refusals, so the timeline's figures can be
    told apart.
    """

    def __init__(self, refusals_per_reading: int = 0) -> None:
        """Open."""
        self.closed = False
        self.readings = 0
        self.refusals_per_reading = refusals_per_reading

    def status(self, name: str) -> int:
        """Max_used_connections 37 (36 + the monitor), refusals as of the last reading."""
        refused = self.readings * self.refusals_per_reading
        return {"Max_used_connections": 37, "Connection_errors_max_connections": refused}[name]

    def statuses(self, names: Sequence[str]) -> dict[str, int]:
        """Threads_connected 10, 11, 12 ... (the monitor included), refusals growing."""
        self.readings += 1
        counters = {
            "Threads_connected": 9 + self.readings,
            "Max_used_connections": 37,
            "Connection_errors_max_connections": self.readings * self.refusals_per_reading,
        }
        return {name: counters[name] for name in names}

    def sessions_of(self, user: str) -> int:
        """The app's 36 persistent connections."""
        return 36

    def close(self) -> None:
        """Closed."""
        self.closed = True


@pytest.fixture(name="page")
def _page() -> Iterator[tuple[int, list[int]]]:
    """A real HTTP server on a free loopback port; set the list's status to what it answers."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], status
    server.shutdown()
    server.server_close()


def test_run_verify_wires_the_stages_in_order_and_judges(page: tuple[int, list[int]]) -> None:
    """Start, migrate, serve, probe, load, judge; the monitor and the stack are closed."""
    port, _ = page
    stack, monitor = FakeStack(port), FakeMonitor()
    loads: list[tuple[int, str, int, float]] = []

    def load(port: int, path: str, concurrency: int, seconds: float) -> LoadResult:
        loads.append((port, path, concurrency, seconds))
        return load_of(200, 200, 200)

    options = parse_options("app:1", max_connections="40", path="/db/", duration="5", host_cpus=2)
    report = run_verify(
        options, stack=stack, monitor=lambda *_: monitor, load=load, say=lambda _line: None
    )

    assert [
        "database kitbuild/mysql:latest 40",
        "migrate 40",
        "app app:1 1",
        "close",
    ] == stack.calls
    assert [(port, "/db/", 5 * 3 * 12, 5.0)] == loads
    assert (True, 36) == (report.verdict.passed, report.measured.app_peak)
    assert monitor.closed


def test_run_verify_samples_the_server_through_its_one_monitor_during_the_load(
    page: tuple[int, list[int]],
) -> None:
    """While the load runs, the sampler reads the monitor every interval; one point each.

    The fake load takes 0.35 s of 0.1 s intervals: points at 0.1, 0.2, 0.3 and the end,
    each with the monitor's reading at its close, and every request in exactly one point.
    """
    port, _ = page
    monitor = FakeMonitor(refusals_per_reading=1)
    opened: list[int] = []

    def open_monitor(*_: object) -> FakeMonitor:
        opened.append(1)
        return monitor

    def load(*_: object) -> LoadResult:
        samples = []
        for _sample in range(7):
            started = time.monotonic()
            time.sleep(0.05)
            samples.append(Sample(started, time.monotonic(), status=200))
        samples.append(Sample(time.monotonic(), time.monotonic(), status=500))
        return LoadResult(tuple(samples), concurrency=1, seconds=0.35)

    report = run_verify(
        parse_options("app:1", path="/db/", host_cpus=2),
        stack=FakeStack(port),
        monitor=open_monitor,
        load=load,
        say=lambda _line: None,
        sample_interval=0.1,
    )

    timeline = report.measured.timeline
    points = timeline.points
    assert [1] == opened
    assert 4 == len(points) == monitor.readings
    assert [9, 10, 11, 12] == [p.app_connections for p in points]  # 10, 11 ... less 1
    assert [1, 1, 1, 1] == [p.errors_1040 for p in points]
    assert 8 == sum(p.requests for p in points)
    assert (7, 1) == (sum(p.ok for p in points), sum(p.failed for p in points))
    assert [0.1, 0.2, 0.3] == [round(p.second, 3) for p in points[:3]]
    assert points[-1].second == timeline.seconds
    assert 4 == len(report.as_dict()["timeline"]["points"])


def test_run_verify_stops_on_a_page_that_fails_and_still_cleans_up(
    page: tuple[int, list[int]],
) -> None:
    """A --path answering 404 before any load is one VerifyError line, and the stack is closed."""
    port, status = page
    status[0] = 404
    stack = FakeStack(port)

    with pytest.raises(VerifyError, match="GET /nope/ answered 404 before any load"):
        run_verify(
            parse_options("app:1", path="/nope/", host_cpus=2),
            stack=stack,
            monitor=lambda *_: FakeMonitor(),
            load=lambda *_: load_of(200),
            say=lambda _line: None,
        )
    assert "close" == stack.calls[-1]
