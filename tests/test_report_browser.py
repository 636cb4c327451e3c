"""The report page in a real browser (headless Chromium), and the harness that opens it.

No Docker: the page is made from a run with a timeline but no containers. The harness is
checked against a page that does what a report must not (a script error, a request to
the network), so a clean result means something.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.verify import page as report_page
from builder.verify.page import render_html
from tests.browser import needs_chromium, open_page, read_png
from tests.verify_reports import sampled_report

pytestmark = [needs_chromium, pytest.mark.browser]


def test_harness_sees_script_errors_and_network_requests(tmp_path: Path) -> None:
    """A page with a failing script and a remote image: both show in what the harness returns."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><p>bad</p><img src='https://kitbuild.invalid/x.png'>"
        "<script>console.error('boom'); noSuchFunction();</script>"
    )

    rendering = open_page(bad, tmp_path / "bad.png", width=400, height=300)

    assert [
        "boom",
        "Uncaught ReferenceError: noSuchFunction is not defined",
    ] == rendering.console
    assert ["https://kitbuild.invalid/x.png"] == rendering.requests


def test_failed_run_page_renders_its_charts_without_errors(tmp_path: Path) -> None:
    """The page of a failed run: nothing logged, nothing fetched, every chart colour drawn."""
    html = tmp_path / "report.html"
    html.write_text(render_html(sampled_report(seconds=12, overload_from=5)))

    rendering = open_page(html, tmp_path / "report.png")
    picture = read_png(rendering.screenshot)

    assert ([], []) == (rendering.console, rendering.requests)
    for colour in (
        report_page.RED,
        report_page.GREEN,
        report_page.BLUE,
        report_page.ORANGE,
        report_page.PURPLE,
    ):
        assert picture.count(colour, tolerance=12) > 150, colour
    assert picture.count("#b00020", tolerance=4) > 40_000  # the FAIL banner
