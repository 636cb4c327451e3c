"""A finished verify run as one self-contained HTML page, and its charts as inline SVG.

The page has no script, no style sheet, font or image from elsewhere: it opens from a CI
artifact store, an e-mail or a file system with no network. The templates are
``images/report/verify.html.j2`` and ``images/report/line_chart.svg.j2``; the geometry is
:mod:`builder.verify.charts`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from builder import __version__
from builder.templates import render_template
from builder.verify.charts import Rule, Series, line_chart
from builder.verify.judge import MONITOR_SESSIONS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from builder.verify.charts import Heatmap, LineChart
    from builder.verify.report import Report

#: Colours of the report's series (they read apart for the common colour blindnesses).
BLUE, GREY, RED, GREEN, ORANGE, PURPLE = (
    "#1f77b4",
    "#7f7f7f",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
)

#: Variables whose values the page does not show: they may carry secrets.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)

#: Variables that change gunicorn's settings after the plan was made (the negative control).
OVERRIDING = frozenset({"GUNICORN_CMD_ARGS"})

#: The plan's fields, in the order the page lists them.
PLAN_FIELDS = (
    "cpus",
    "memory",
    "workers",
    "threads",
    "connections_per_thread",
    "pool_size",
    "peak_connections",
    "containers",
    "peak_connections_all",
    "max_connections",
    "reserved",
    "budget",
    "headroom",
)


#: The timeline's charts: key, title, unit, and each series as (the Point attribute it
#: draws, its label, its colour, dashed). The connections chart also gets the budget line.
CHARTS: tuple[tuple[str, str, str, tuple[tuple[str, str, str, bool], ...]], ...] = (
    (
        "connections",
        "The app's open connections against its budget",
        "connections",
        # The peak first, so the open connections are drawn over it where they meet.
        (
            ("app_high_water", "peak so far", GREY, True),
            ("app_connections", "open now", BLUE, False),
        ),
    ),
    (
        "throughput",
        "Requests answered 2xx per second",
        "requests / s",
        (("requests_per_second", "answered per second", GREEN, False),),
    ),
    (
        "latency",
        "Latency of the responses ending in each second",
        "seconds",
        (("latency_p50", "p50", BLUE, False), ("latency_p99", "p99", ORANGE, False)),
    ),
    (
        "failures",
        "Failures in each second",
        "count",
        (
            ("failed", "failed requests", RED, False),
            ("errors_1040", "refused (1040)", PURPLE, False),
        ),
    ),
)


def timeline_charts(report: Report) -> list[LineChart]:
    """The four charts of the run: connections against the budget, throughput, latency, failures."""
    timeline = report.measured.timeline
    points = timeline.points
    budget = report.measured.plan.plan.budget
    first = timeline.first_failure
    markers = [(f"first failures, {first.second:g} s", first.second)] if first else []
    return [
        line_chart(
            key,
            title,
            [point.second for point in points],
            [
                Series(name, label, colour, [getattr(p, name) for p in points], dashed=dashed)
                for name, label, colour, dashed in series
            ],
            unit=unit,
            rules=[Rule("budget", f"budget {budget}", budget, RED)] if key == "connections" else [],
            markers=markers,
        )
        for key, title, unit, series in CHARTS
    ]


def render_chart(chart: LineChart) -> str:
    """One line chart as an SVG element (a standalone SVG document too)."""
    return render_template("report/line_chart.svg.j2", chart=chart)


def render_heatmap(chart: Heatmap) -> str:
    """One heatmap as a standalone SVG document."""
    return render_template("report/heatmap.svg.j2", map=chart)


def shown_environment(environment: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``--env`` pairs the page lists, with the values of secret-looking names hidden."""
    return [
        (name, "(hidden)" if SECRET_NAME.search(name) else value)
        for name, value in sorted(environment.items())
    ]


def render_html(report: Report) -> str:
    """The whole page."""
    plan = report.measured.plan.plan.as_dict()
    reasons = report.measured.plan.plan.reasons
    return render_template(
        "report/verify.html.j2",
        report=report,
        data=report.as_dict(),
        charts=[render_chart(chart) for chart in timeline_charts(report)],
        plan_rows=[(name, plan[name], reasons.get(name, "")) for name in PLAN_FIELDS],
        environment=shown_environment(report.options.environment),
        overridden=OVERRIDING & report.options.environment.keys(),
        first_failure=report.measured.timeline.first_failure,
        open_above_peak=any(
            p.app_connections > p.app_high_water
            for p in report.measured.timeline.points
            if p.app_connections is not None and p.app_high_water is not None
        ),
        monitor_sessions=MONITOR_SESSIONS,
        version=__version__,
    )
