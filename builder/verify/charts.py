"""The geometry of kitbuild's charts: numbers in, pixel positions and colours out (pure).

Templates under ``images/report/`` draw these as inline SVG; nothing here knows SVG syntax
beyond the ``points`` attribute's "x,y x,y" form, and nothing here reads a file.

- :func:`line_chart`: series over time, with horizontal rules (the budget) and vertical
  markers (the moment failures began);
- :func:`heatmap`: one value per (row, column) cell, with one cell marked (the plan's).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: Space around a chart's plot area, in pixels: left (y labels), top, right, bottom.
MARGIN = (52, 34, 16, 38)


@dataclasses.dataclass(frozen=True)
class Scale:
    """A linear map from a value range onto a pixel range (which may run backwards)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        """The pixel position of ``value``."""
        if self.high == self.low:
            return self.start
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Tick values from 0 to at least ``high`` in steps of 1, 2 or 5 x 10^k, about ``count``."""
    if high <= 0:
        return [0.0, 1.0]
    rough = high / count
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    steps = math.ceil(high / step - 1e-9)
    return [round(n * step, 10) for n in range(steps + 1)]


def tick_label(value: float, step: float) -> str:
    """A tick's label, with as many decimals as the step needs."""
    decimals = max(0, -math.floor(math.log10(step))) if 0 < step < 1 else 0
    return f"{value:.{decimals}f}"


@dataclasses.dataclass(frozen=True)
class Series:
    """One line to draw: a value per x (None where there is none)."""

    key: str  # a stable name, for data-series attributes and tests
    label: str
    color: str
    values: Sequence[float | None]
    dashed: bool = False


@dataclasses.dataclass(frozen=True)
class Rule:
    """A horizontal line across the plot at a value, such as a budget."""

    key: str
    label: str
    value: float
    color: str


@dataclasses.dataclass(frozen=True)
class Tick:
    """An axis tick: its pixel position and its label."""

    position: float
    label: str


@dataclasses.dataclass(frozen=True)
class Dot:
    """One data point, with the text its tooltip shows."""

    x: float
    y: float
    title: str


@dataclasses.dataclass(frozen=True)
class Line:
    """A series laid out: its polylines (one per unbroken run of values) and its dots."""

    key: str
    label: str
    color: str
    dashed: bool
    segments: tuple[str, ...]  # each an SVG points attribute
    dots: tuple[Dot, ...]
    values: str  # the values themselves, space-separated ("" for a gap), for readers


@dataclasses.dataclass(frozen=True)
class RuleLine(Rule):
    """A rule laid out: the rule, and the y it is drawn at."""

    y: float


@dataclasses.dataclass(frozen=True)
class MarkerLine:
    """A vertical marker laid out."""

    label: str
    x: float


@dataclasses.dataclass(frozen=True)
class LineChart:
    """Everything a template needs to draw one line chart."""

    key: str
    title: str
    unit: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    lines: tuple[Line, ...]
    rules: tuple[RuleLine, ...]
    markers: tuple[MarkerLine, ...]


def line_chart(
    key: str,
    title: str,
    xs: Sequence[float],
    series: Sequence[Series],
    *,
    unit: str,
    rules: Sequence[Rule] = (),
    markers: Sequence[tuple[str, float]] = (),
    width: int = 560,
    height: int = 230,
    dots_up_to: int = 120,
) -> LineChart:
    """Lay out ``series`` against ``xs`` (seconds) from 0, on a y axis from 0 that fits all.

    The y axis reaches the largest value or rule, rounded up to a tick, so a rule such as
    the budget is always inside the plot. Points get dots (with tooltips) while there are
    at most ``dots_up_to`` of them.
    """
    left, top = MARGIN[0], MARGIN[1]
    right, bottom = width - MARGIN[2], height - MARGIN[3]
    values = [v for s in series for v in s.values if v is not None] + [r.value for r in rules]
    y_ticks = nice_ticks(max(values, default=0.0), count=4)
    x_ticks = nice_ticks(max(xs, default=0.0), count=6)
    x = Scale(0.0, x_ticks[-1], left, right)
    y = Scale(0.0, y_ticks[-1], bottom, top)
    lines = []
    for one in series:
        if len(one.values) != len(xs):
            raise ValueError(f"series {one.key} has {len(one.values)} values for {len(xs)} times")
        runs: list[list[str]] = [[]]
        dots = []
        for at, value in zip(xs, one.values, strict=True):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(at):.1f},{y(value):.1f}")
            if len(xs) <= dots_up_to:
                dots.append(Dot(x(at), y(value), f"{at:g} s: {_number(value)} {unit}".strip()))
        lines.append(
            Line(
                key=one.key,
                label=one.label,
                color=one.color,
                dashed=one.dashed,
                segments=tuple(" ".join(run) for run in runs if run),
                dots=tuple(dots),
                values=" ".join("" if v is None else _number(v) for v in one.values),
            )
        )
    return LineChart(
        key=key,
        title=title,
        unit=unit,
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        x_ticks=tuple(Tick(x(t), tick_label(t, x_ticks[1])) for t in x_ticks),
        y_ticks=tuple(Tick(y(t), tick_label(t, y_ticks[1])) for t in y_ticks),
        lines=tuple(lines),
        rules=tuple(RuleLine(r.key, r.label, r.value, r.color, y(r.value)) for r in rules),
        markers=tuple(MarkerLine(label, x(at)) for label, at in markers),
    )


def _number(value: float) -> str:
    """A value as a reader wants it: whole numbers bare, others to 3 significant digits."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


# --------------------------------------------------------------------------- heatmap


#: The heatmap's colours from the lowest value to the highest (light to dark blue).
LOW_COLOR, HIGH_COLOR = (0xEF, 0xF3, 0xFF), (0x08, 0x45, 0x94)

#: From this share of the largest value on, a cell's shade is dark and its text light.
DARK_FROM = 0.45


def shade(fraction: float) -> str:
    """The colour at ``fraction`` (0 to 1, clamped) between the low and the high colour."""
    fraction = min(1.0, max(0.0, fraction))
    red, green, blue = (
        round(low + (high - low) * fraction)
        for low, high in zip(LOW_COLOR, HIGH_COLOR, strict=True)
    )
    return f"#{red:02x}{green:02x}{blue:02x}"


@dataclasses.dataclass(frozen=True)
class HeatCell:
    """One cell laid out: its box, colour and text."""

    row: int
    column: int
    x: float
    y: float
    size: float
    fill: str
    text: str  # the value, or "" for a cell that was not measured
    note: str  # a second line: the ratio to the best, or why there is no value
    dark: bool  # whether the fill is dark enough to need light text
    marked: bool
    best: bool
    title: str


@dataclasses.dataclass(frozen=True)
class Heatmap:
    """Everything a template needs to draw one heatmap."""

    title: str
    subtitle: str
    width: int
    height: int
    row_title: str
    column_title: str
    cells: tuple[HeatCell, ...]
    row_labels: tuple[Tick, ...]  # y centres
    column_labels: tuple[Tick, ...]  # x centres
    mark_label: str
    unit: str
    missing: str


def heatmap(
    title: str,
    subtitle: str,
    rows: Sequence[int],
    columns: Sequence[int],
    values: Mapping[tuple[int, int], float],
    *,
    marked: tuple[int, int] | None,
    mark_label: str,
    unit: str,
    row_title: str,
    column_title: str,
    missing: str = "not measured",
    notes: Mapping[tuple[int, int], str] | None = None,
    size: int = 74,
) -> Heatmap:
    """Lay out one cell per (row, column); its shade is its value's share of the largest.

    ``marked`` (such as the plan's cell) gets an outline; the largest value is called best.
    A cell without a value says ``notes[cell]``, or ``missing``.
    """
    notes = notes or {}
    left, top = 92, 84
    best = max(values.values(), default=0.0)
    cells = []
    for row_index, row in enumerate(rows):
        for column_index, column in enumerate(columns):
            value = values.get((row, column))
            absent = notes.get((row, column), missing)
            fraction = value / best if value is not None and best > 0 else 0.0
            cells.append(
                HeatCell(
                    row=row,
                    column=column,
                    x=left + column_index * size,
                    y=top + row_index * size,
                    size=size,
                    fill=shade(fraction) if value is not None else "#f4f4f4",
                    text="" if value is None else f"{value:.0f}",
                    note=absent if value is None else f"{fraction:.2f}",
                    dark=value is not None and fraction > DARK_FROM,
                    marked=(row, column) == marked,
                    best=value is not None and value == best,
                    title=f"{row} x {column}: "
                    + (absent if value is None else f"{value:.0f} {unit}, {fraction:.2f} of best"),
                )
            )
    return Heatmap(
        title=title,
        subtitle=subtitle,
        width=left + len(columns) * size + 190,
        height=top + len(rows) * size + 50,
        row_title=row_title,
        column_title=column_title,
        cells=tuple(cells),
        row_labels=tuple(Tick(top + (i + 0.5) * size, str(r)) for i, r in enumerate(rows)),
        column_labels=tuple(Tick(left + (i + 0.5) * size, str(c)) for i, c in enumerate(columns)),
        mark_label=mark_label,
        unit=unit,
        missing=missing,
    )
