"""`kitbuild verify --report` and `--junit`: the page, the XML, and how the files are written."""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from builder import cli
from builder.errors import VerifyError
from builder.verify.junit import render_junit
from builder.verify.options import VerifyOptions
from builder.verify.output import check_destinations, write_files
from builder.verify.page import render_html
from tests.report_pages import read_page
from tests.verify_reports import PLAN, sampled_report


def test_page_draws_every_sampled_second_and_the_budget_line() -> None:
    """Four charts; every series has one value per sampled second; the rule is the budget."""
    report = sampled_report(seconds=6)

    page = read_page(render_html(report))

    assert ["connections", "throughput", "latency", "failures"] == page.charts
    assert 6 == page.sampled_points
    assert {
        "app_high_water", "app_connections", "requests_per_second", "latency_p50",
        "latency_p99", "failed", "errors_1040",
    } == page.series.keys()  # fmt: skip
    assert all(6 == len(values) for values in page.series.values()), page.series
    assert [PLAN.plan.budget - 1] * 6 == page.series["app_connections"]
    # The last request of each second ends in the next one.
    assert [19, 20, 20, 20, 20, 21] == page.series["requests_per_second"]
    assert all([6] == drawn for drawn in page.segments.values())
    assert {"budget": PLAN.plan.budget} == page.rules
    assert (True, {"budget held": True, "no error 1040": True, "every request answered": True}) == (
        page.passed,
        page.promises,
    )


def test_page_of_a_failed_run_shows_where_failures_began_and_each_reason() -> None:
    """The verdict is FAIL with every reason; the charts mark the first second that failed."""
    report = sampled_report(seconds=6, overload_from=4)

    html = render_html(report)
    page = read_page(html)

    assert page.passed is False
    assert not any(page.promises.values())
    assert [0, 0, 0, 5, 5, 5] == page.series["errors_1040"]
    assert [0, 0, 0, 5, 5, 5] == page.series["failed"]
    assert 4 == html.count("first failures, 4 s")  # once per chart
    for failure in report.verdict.failures:
        assert failure in page.text
    assert "the app held 46 connections at once, over its budget of 37" in page.text


def test_page_explains_open_connections_read_above_the_peak_only_when_they_were() -> None:
    """Two counters can disagree for a moment; the page says why, and only when they did."""
    report = sampled_report(seconds=3)
    tick = report.measured.timeline.points[1]
    above = dataclasses.replace(tick, app_connections=(tick.app_high_water or 0) + 1)
    timeline = dataclasses.replace(
        report.measured.timeline, points=(report.measured.timeline.points[0], above)
    )
    measured = dataclasses.replace(report.measured, timeline=timeline)

    note = "At moments the open connections read above the peak"
    assert note not in render_html(report)
    assert note in render_html(dataclasses.replace(report, measured=measured))


def test_page_is_self_contained() -> None:
    """No script, style sheet, image, font or frame from anywhere: it opens offline."""
    html = render_html(sampled_report(overload_from=2))

    assert re.findall(r"https?://[^\s\"'<>)]+", html) == ["http://www.w3.org/2000/svg"] * 4
    assert not re.search(
        r"<(script|link|img|iframe|object|embed)\b|\bsrc=|\bhref=|url\(|@import", html
    )


def test_page_escapes_what_it_was_given_and_hides_secret_looking_values() -> None:
    """Image names, paths and --env values are text on the page, never markup."""
    options = VerifyOptions(
        image="evil<script>alert(1)</script>:1",
        path='/q/?a=<b>&c="d"',
        environment={
            "PROJECT_FLAG": "<img onerror=x>",
            "API_TOKEN": "s3cr3t-value",
            "GUNICORN_CMD_ARGS": "--workers 5 --threads 96",
        },
    )

    html = render_html(sampled_report(options=options))

    assert "<script>" not in html
    assert "<img" not in html
    assert "evil&lt;script&gt;alert(1)&lt;/script&gt;:1" in html
    assert "/q/?a=&lt;b&gt;&amp;c=&#34;d&#34;" in html
    assert "&lt;img onerror=x&gt;" in html
    assert "s3cr3t-value" not in html
    assert "set gunicorn's workers or threads after the plan" in html
    assert 'id="overridden"' in html


def test_page_lists_the_plan_with_its_reasons_and_the_settings() -> None:
    """The plan's numbers with the reason for each, and the server's and app's settings."""
    page = read_page(render_html(sampled_report()))

    assert "37 connections per container / (3 workers x 1 per thread)" in page.text
    assert "max_connections 40 - reserved 3" in page.text
    assert "--cpus 1" in page.text
    assert "kitbuild/mysql:latest" in page.text


def test_junit_has_one_passing_case_per_promise() -> None:
    """A passing run: one suite, three cases, no failures; each case says its figures."""
    root = ElementTree.fromstring(render_junit(sampled_report()))

    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert ("3", "0", "0") == (suite.get("tests"), suite.get("failures"), suite.get("errors"))
    assert ["budget held", "no error 1040", "every request answered"] == [
        case.get("name") for case in cases
    ]
    assert [] == root.findall(".//failure")
    assert "budget 37" in (cases[0].findtext("system-out") or "")
    assert {"budget": "37", "image": "mysite:latest", "plan": "3 workers x 12 threads"}.items() <= {
        p.get("name"): p.get("value") for p in suite.iter("property")
    }.items()


def test_junit_failures_name_the_numbers() -> None:
    """A failing run: every broken promise is a failure whose message carries its figures."""
    root = ElementTree.fromstring(render_junit(sampled_report(seconds=6, overload_from=4)))

    failures = {case.get("name"): case.find("failure") for case in root.iter("testcase")}
    suite = root.find("testsuite")
    assert suite is not None
    assert "3" == root.get("failures") == suite.get("failures")
    messages = {name: f.get("message") for name, f in failures.items() if f is not None}
    assert {
        "budget held": "the app held 46 connections at once, over its budget of 37",
        "no error 1040": "the server refused 15 connections with error 1040 (Too many connections)",
        "every request answered": "15 of 120 requests failed (statuses 200: 105, 500: 15; "
        "no answer none)",
    } == messages


# ------------------------------------------------------------------------------ the files


def test_files_are_written_whole_and_replace_older_ones(tmp_path: Path) -> None:
    """Both files land complete; missing directories are made; an old file is replaced."""
    report, junit = tmp_path / "out" / "deep" / "report.html", tmp_path / "junit.xml"
    junit.write_text("old")

    write_files({report: "<html>", junit: "<xml/>"})

    assert ("<html>", "<xml/>") == (report.read_text(), junit.read_text())
    assert ["deep", "junit.xml", "out"] == sorted(
        p.name for p in tmp_path.rglob("*") if p.name != "report.html"
    )


def test_no_file_is_written_when_one_cannot_be(tmp_path: Path) -> None:
    """When the second file fails, the first is not put in place and no temporary is left."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")

    with pytest.raises(VerifyError, match=r"^cannot write .*blocker/junit\.xml: "):
        write_files({tmp_path / "report.html": "<html>", blocker / "junit.xml": "<xml/>"})

    assert ["blocker"] == sorted(p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: {"--report": d}, "--report {d} is a directory: name the file to write in it"),
        (
            lambda d: {"--report": d / "a.html", "--junit": d / "sub" / ".." / "a.html"},
            "--report and --junit both name {d}/sub/../a.html: give each its own file",
        ),
        (
            lambda d: {"--junit": d / "file" / "sub" / "j.xml"},
            "--junit {d}/file/sub/j.xml: {d}/file is not a directory",
        ),
    ],
    ids=["directory", "same file twice", "under a file"],
)
def test_bad_destinations_are_one_line(
    make: Callable[[Path], dict[str, Path]], message: str, tmp_path: Path
) -> None:
    """A directory, one file named twice, or a path below a file: one line naming the fix."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "sub").mkdir()

    with pytest.raises(VerifyError) as raised:
        check_destinations(make(tmp_path))

    assert message.format(d=tmp_path) == str(raised.value)


def test_good_destinations_pass_and_none_is_no_file(tmp_path: Path) -> None:
    """New files, in directories still to be made, and options not given are all fine."""
    check_destinations({"--report": tmp_path / "new" / "r.html", "--junit": None})


def test_cli_refuses_a_bad_report_path_before_anything_starts(tmp_path: Path) -> None:
    """`verify --report DIR` is one line and exit 1, before the engine is even asked."""
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["verify", "app:1", "--report", str(tmp_path)],
        env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        stdout=out,
        stderr=err,
    )

    assert (1, "") == (code, out.getvalue())
    assert (
        f"kitbuild: error: --report {tmp_path} is a directory: name the file to write in it\n"
        == err.getvalue()
    )
