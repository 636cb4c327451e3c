"""The chart geometry (builder.verify.charts): scales, ticks, lines, rules and heatmaps."""

from __future__ import annotations

import pytest

from builder.verify.charts import (
    HIGH_COLOR,
    LOW_COLOR,
    MARGIN,
    Rule,
    Scale,
    Series,
    heatmap,
    line_chart,
    nice_ticks,
    shade,
    tick_label,
)


def test_scale_maps_the_range_ends_and_runs_backwards_for_y() -> None:
    """A value range maps linearly onto pixels; a y axis runs from the bottom up."""
    y = Scale(0.0, 40.0, 200.0, 40.0)

    assert (200.0, 40.0, 120.0) == (y(0), y(40), y(20))
    assert 5.0 == Scale(3.0, 3.0, 5.0, 9.0)(3.0)  # an empty range does not divide by zero


@pytest.mark.parametrize(
    ("high", "count", "ticks"),
    [
        (37, 4, [0, 10, 20, 30, 40]),
        (40, 4, [0, 10, 20, 30, 40]),
        (8.7, 6, [0, 2, 4, 6, 8, 10]),
        (0.595, 4, [0, 0.2, 0.4, 0.6]),
        (1, 4, [0, 0.5, 1.0]),
        (0, 4, [0, 1]),
        (480, 4, [0, 200, 400, 600]),
    ],
)
def test_nice_ticks_start_at_zero_and_cover_the_largest_value(
    high: float, count: int, ticks: list[float]
) -> None:
    """Ticks step by 1, 2 or 5 x 10^k from 0 to the first tick at or above the value."""
    assert ticks == nice_ticks(high, count)


def test_tick_labels_have_the_decimals_their_step_needs() -> None:
    """Whole steps print whole numbers; a 0.2 step prints one decimal, 0.05 two."""
    assert ("40", "0.4", "0.15") == (
        tick_label(40, 10),
        tick_label(0.4, 0.2),
        tick_label(0.15, 0.05),
    )


def test_budget_rule_is_drawn_at_the_budgets_height_and_is_always_in_the_plot() -> None:
    """A rule above every value still fits: the y axis reaches it, and its y is its value's."""
    chart = line_chart(
        "connections",
        "Connections",
        [1, 2, 3],
        [Series("open", "open", "#000", [10, 20, 30])],
        unit="connections",
        rules=[Rule("budget", "budget 37", 37, "#f00")],
    )
    (rule,) = chart.rules
    y = Scale(0.0, 40.0, chart.bottom, chart.top)  # ticks 0..40 for a largest value of 37

    assert "40" == chart.y_ticks[-1].label
    assert (37, y(37)) == (rule.value, rule.y)
    assert chart.top <= rule.y <= chart.bottom
    assert (MARGIN[0], chart.width - MARGIN[2]) == (chart.left, chart.right)


def test_series_become_polylines_split_at_gaps_with_their_values_kept() -> None:
    """A missing value breaks the line in two; the values attribute keeps one per x."""
    chart = line_chart(
        "c",
        "C",
        [1, 2, 3, 4],
        [Series("s", "s", "#000", [1.0, None, 3.0, 4.0])],
        unit="u",
    )
    (line,) = chart.lines
    x = Scale(0.0, 4.0, chart.left, chart.right)
    y = Scale(0.0, 4.0, chart.bottom, chart.top)

    assert "1  3 4" == line.values
    assert (
        f"{x(1):.1f},{y(1):.1f}",
        f"{x(3):.1f},{y(3):.1f} {x(4):.1f},{y(4):.1f}",
    ) == line.segments
    assert ["1 s: 1 u", "3 s: 3 u", "4 s: 4 u"] == [dot.title for dot in line.dots]


def test_many_points_are_drawn_without_dots() -> None:
    """Past ``dots_up_to`` points the lines stay and the dots go (the page stays small)."""
    xs = list(range(1, 11))
    chart = line_chart("c", "C", xs, [Series("s", "s", "#000", xs)], unit="u", dots_up_to=5)

    assert (1, ()) == (len(chart.lines[0].segments), chart.lines[0].dots)
    assert 10 == len(chart.lines[0].segments[0].split())


def test_markers_sit_at_their_time_and_a_series_of_the_wrong_length_is_refused() -> None:
    """A marker's x is its time's; a series with one value too few is an error, not a shift."""
    chart = line_chart(
        "c", "C", [1, 2], [Series("s", "s", "#000", [1, 2])], unit="u", markers=[("m", 2)]
    )

    assert Scale(0.0, 2.0, chart.left, chart.right)(2) == chart.markers[0].x
    with pytest.raises(ValueError, match="series s has 1 values for 2 times"):
        line_chart("c", "C", [1, 2], [Series("s", "s", "#000", [1])], unit="u")


def test_shade_runs_from_the_low_to_the_high_colour_and_clamps() -> None:
    """0 is the light end, 1 the dark end, values outside are clamped."""
    low, high = "#{:02x}{:02x}{:02x}".format(*LOW_COLOR), "#{:02x}{:02x}{:02x}".format(*HIGH_COLOR)

    assert (low, high, low, high) == (shade(0), shade(1), shade(-3), shade(7))
    assert shade(0.5) not in {low, high}


def test_heatmap_marks_one_cell_names_the_best_and_notes_the_missing() -> None:
    """Each (row, column) gets a box in reading order; the marked, best and empty cells say so."""
    chart = heatmap(
        "T",
        "S",
        [1, 2],
        [8, 16],
        {(1, 8): 100.0, (1, 16): 200.0, (2, 8): 150.0},
        marked=(2, 8),
        mark_label="plan",
        unit="req/s",
        row_title="workers",
        column_title="threads",
        notes={(2, 16): "over budget"},
        size=50,
    )
    cells = {(cell.row, cell.column): cell for cell in chart.cells}

    assert [(1, 8), (1, 16), (2, 8), (2, 16)] == [(c.row, c.column) for c in chart.cells]
    assert (cells[1, 8].x + 50, cells[1, 8].y + 50) == (cells[1, 16].x, cells[2, 8].y)
    assert [(2, 8)] == [key for key, cell in cells.items() if cell.marked]
    assert [(1, 16)] == [key for key, cell in cells.items() if cell.best]
    assert ("150", "0.75", shade(0.75)) == (cells[2, 8].text, cells[2, 8].note, cells[2, 8].fill)
    assert ("", "over budget") == (cells[2, 16].text, cells[2, 16].note)
    assert "2 x 8: 150 req/s, 0.75 of best" == cells[2, 8].title
    assert ["1", "2"] == [label.label for label in chart.row_labels]
