"""bench/throughput.py's heatmaps: read from results.md's tables, drawn with verify's charts."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from bench import throughput
from bench.throughput import Cell, GridFigures, Row

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "bench" / "results.md"
SVG = "{http://www.w3.org/2000/svg}"


def cells_of(svg: str) -> dict[tuple[int, int], dict[str, str]]:
    """Each drawn cell's attributes, by (workers, threads)."""
    root = ElementTree.fromstring(svg)
    return {
        (int(g.get("data-row", 0)), int(g.get("data-column", 0))): dict(g.attrib)
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "cell"
    }


def test_figures_are_read_from_the_committed_results() -> None:
    """Both grids of bench/results.md, with the plan's shape and every grid cell's req/s."""
    grids = throughput.figures_from_results(RESULTS.read_text())

    assert [(1.0, 96, (3, 16)), (2.0, 96, (5, 16))] == [(g.cpus, g.budget, g.plan) for g in grids]
    assert 15 == len(grids[0].requests_per_second)
    assert 23 == len(grids[1].requests_per_second)
    assert (656.0, 610.0) == (
        grids[0].requests_per_second[2, 32],
        grids[0].requests_per_second[3, 16],
    )
    assert 712.0 == grids[1].requests_per_second[4, 16]


def test_heatmap_marks_the_plans_cell_and_greys_the_cells_over_budget() -> None:
    """Workers 1..2 x CPUs + 1 by the grid's threads; the plan outlined, over-budget cells empty."""
    figures = GridFigures(2.0, 96, {(4, 16): 712.0, (5, 16): 608.0, (1, 2): 83.0}, (5, 16))

    svg = throughput.grid_heatmap(figures)
    cells = cells_of(svg)

    assert {(w, t) for w in range(1, 6) for t in throughput.GRID_THREADS} == cells.keys()
    assert [(5, 16)] == [key for key, cell in cells.items() if cell.get("data-marked")]
    assert ("712", "608", "") == tuple(
        cells[key]["data-value"] for key in [(4, 16), (5, 16), (4, 32)]
    )
    assert 2 == svg.count(">over budget<")  # 4 x 32 and 5 x 32 exceed 96
    assert 20 + 1 == svg.count(">not run<")  # 25 cells less 3 measured, 2 over; the legend


def test_run_rows_give_the_same_figures_as_the_table_they_are_written_to() -> None:
    """A run's rows and its Markdown table read back agree: one function draws both."""
    rows = [
        Row(Cell("auto", None, None, {}), 3, 16, 563.4, 1, 0, 0.1, 0.2, 48, 0, 3.0),
        Row(Cell("grid 2 x 32", 2, 32, {}, grid=True), 2, 32, 656.2, 1, 0, 0.1, 0.2, 64, 0, 3.0),
        Row(Cell("grid 3 x 16", 3, 16, {}, grid=True), 3, 16, 610.0, 1, 0, 0.1, 0.2, 48, 0, 3.0),
    ]
    text = "\n".join(
        ["### App `--cpus 1`, server max_connections 100 (budget 96)", "", *throughput.table(rows)]
    )

    (read,) = throughput.figures_from_results(text)
    made = throughput.grid_figures(1.0, 96, rows)

    assert made.plan == read.plan == (3, 16)
    assert {
        key: round(value) for key, value in made.requests_per_second.items()
    } == read.requests_per_second


def test_results_link_each_grid_to_its_heatmap_once() -> None:
    """Linking twice changes nothing; each section's link names a file that is committed."""
    text = RESULTS.read_text()

    linked = throughput.link_heatmaps(text)

    assert linked == throughput.link_heatmaps(linked)
    assert linked == text  # the committed results already carry their links
    for grid in throughput.figures_from_results(text):
        name = throughput.heatmap_name(grid.cpus)
        assert f"[{name}]({name})" in text
        assert (RESULTS.parent / name).read_text() == throughput.grid_heatmap(grid)
