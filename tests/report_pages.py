"""Read back what a `kitbuild verify --report` page draws: its charts, series and rules.

The unit tests and the Docker tests both read pages through this, so they check the page
the way a reader's browser gets it: the SVG elements' own attributes, not the JSON.
"""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser


@dataclasses.dataclass
class ReportPage:
    """What a report page holds."""

    charts: list[str] = dataclasses.field(default_factory=list)  # data-chart, in order
    series: dict[str, list[float | None]] = dataclasses.field(default_factory=dict)
    segments: dict[str, list[int]] = dataclasses.field(default_factory=dict)  # points drawn
    rules: dict[str, float] = dataclasses.field(default_factory=dict)
    sampled_points: int | None = None
    passed: bool | None = None
    promises: dict[str, bool] = dataclasses.field(default_factory=dict)
    tags: set[str] = dataclasses.field(default_factory=set)
    text: list[str] = dataclasses.field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = ReportPage()
        self._series: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        page = self.page
        page.tags.add(tag)
        if "data-chart" in found:
            page.charts.append(found["data-chart"])
        if "data-series" in found:
            self._series = found["data-series"]
            page.series[self._series] = [
                None if value == "" else float(value) for value in found["data-values"].split(" ")
            ]
            page.segments[self._series] = []
        if tag == "polyline" and self._series is not None:
            page.segments[self._series].append(len(found["points"].split()))
        if "data-rule" in found:
            page.rules[found["data-rule"]] = float(found["data-value"])
        if found.get("id") == "sampling":
            page.sampled_points = int(found["data-points"])
        if found.get("id") == "verdict":
            page.passed = found["data-passed"] == "true"
        if "data-promise" in found:
            page.promises[found["data-promise"]] = found["data-held"] == "true"

    def handle_endtag(self, tag: str) -> None:
        if tag == "g":
            self._series = None

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.page.text.append(data.strip())


def read_page(html: str) -> ReportPage:
    """Parse a report page (HTML5, inline SVG) with the standard library's parser."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page
