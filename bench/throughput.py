"""Benchmark (not a test): the automatic plan against a grid, the seed's recipe and defaults.

    python bench/throughput.py [--image mysite:latest] [--cpus 1,2] [--duration 8]
                               [--confirm 2] [--quick] [--no-builds] [--output bench/results.md]
    python bench/throughput.py --heatmaps-only   # redraw the heatmaps from results.md
    python bench/throughput.py --study workers [--rounds 5] [--cpus 0.5,1,1.5,2] [--quick]
                               # the worker-rule study (bench/worker_study.py), with wrk

One server (kitbuild/mysql, max_connections 100) serves every cell; each cell starts the
app anew with --cpus and one configuration, drives the same overload at a page that holds
a connection for SELECT SLEEP(0.02), and reads the server's high-water mark. Cells:

  auto            the image's own plan (persistent connections)
  auto, per-req   the same plan with a new connection per request (CONN_MAX_AGE=0)
  grid w x t      workers 1 .. 2*cpus+1 x threads 2, 4, 8, 16, 32 within the budget
  seed recipe     host cpu_count()*2+1 workers, int(480 / workers) threads, per request
  gunicorn default  one sync worker, per request (Django's default CONN_MAX_AGE=0)
  naive           workers = host cpu_count(), sync, per request

Throughput is requests answered 2xx per second; the ratio is to the best grid cell at the
same CPU limit. Each grid is also drawn as a heatmap (bench/heatmap-cpus-N.svg, linked from
results.md), with the plan's cell marked, by the chart code of `kitbuild verify --report`.
Everything runs on loopback, on this machine, in one run: compare within the table, not
across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import worker_study, wrk  # noqa: E402
from builder.engine import DockerGateway  # noqa: E402
from builder.image.service_images import MYSQL  # noqa: E402
from builder.verify.charts import heatmap  # noqa: E402
from builder.verify.load import Load  # noqa: E402
from builder.verify.options import parse_options  # noqa: E402
from builder.verify.page import render_heatmap  # noqa: E402
from builder.verify.run import app_environment, new_credentials  # noqa: E402
from builder.verify.server import ServerSession  # noqa: E402
from builder.verify.stack import VerifyStack  # noqa: E402
from kitbuild_runtime import capacity  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_CONNECTIONS = 100
PAGE = "/db/sleep/?seconds=0.02"
GRID_THREADS = (2, 4, 8, 16, 32)
PER_REQUEST = {"DATABASE_CONN_MAX_AGE": "0"}
#: --cpus when not given: the grid's limits; the worker study then uses its own.
parser_default_cpus = "1,2"
#: Seconds of load before each measured run (not counted in the throughput).
WARM_UP = 2.0


@dataclasses.dataclass(frozen=True)
class Cell:
    """One configuration to measure."""

    name: str
    workers: int | None  # None: the image's plan decides
    threads: int | None
    environment: dict[str, str]
    grid: bool = False


@dataclasses.dataclass(frozen=True)
class Row:
    """What one cell measured."""

    cell: Cell
    workers: int
    threads: int
    requests_per_second: float
    requests: int
    failed: int
    p50: float
    p99: float
    app_peak: int
    refused_1040: int
    start_to_healthy: float


def forced(workers: int, threads: int, *, sync: bool = False) -> dict[str, str]:
    """Environment that overrides the image's plan through gunicorn's own variable."""
    worker_class = " --worker-class sync" if sync else ""
    return {"GUNICORN_CMD_ARGS": f"--workers {workers} --threads {threads}{worker_class}"}


def grid_workers(cpus: float) -> range:
    """The grid's worker counts at a CPU limit: 1 to 2 x CPUs + 1."""
    return range(1, int(2 * cpus + 1) + 1)


def cells_for(cpus: float, budget: int, host_cpus: int, *, quick: bool) -> list[Cell]:
    """The configurations for one CPU limit; the grid keeps workers x threads within budget."""
    seed_workers = host_cpus * 2 + 1
    cells = [
        Cell("auto", None, None, {}),
        Cell("auto, connection per request", None, None, dict(PER_REQUEST)),
        Cell(
            "seed recipe",
            seed_workers,
            480 // seed_workers,
            {**forced(seed_workers, 480 // seed_workers), **PER_REQUEST},
        ),
        Cell("gunicorn default (1 sync)", 1, 1, {**forced(1, 1, sync=True), **PER_REQUEST}),
        Cell(
            "naive (cpu_count sync)",
            host_cpus,
            1,
            {**forced(host_cpus, 1, sync=True), **PER_REQUEST},
        ),
    ]
    worker_counts = grid_workers(cpus)
    threads: tuple[int, ...] = GRID_THREADS
    if quick:
        worker_counts, threads = worker_counts[-1:], (8, 32)
    for workers in worker_counts:
        for per_worker in threads:
            if workers * per_worker <= budget:
                cells.append(
                    Cell(
                        f"grid {workers} x {per_worker}",
                        workers,
                        per_worker,
                        forced(workers, per_worker),
                        grid=True,
                    )
                )
    # The plan again, last: the spread between the two auto rows is the run's noise.
    cells.append(Cell("auto (again, last)", None, None, {}))
    return cells


def wait_for_no_sessions(monitor: ServerSession, user: str, within: float = 15.0) -> None:
    """Wait until the previous app's connections are gone from the server."""
    deadline = time.monotonic() + within
    while monitor.sessions_of(user) and time.monotonic() < deadline:
        time.sleep(0.2)


def measure(
    stack: VerifyStack,
    monitor: ServerSession,
    *,
    user: str,
    image: str,
    base_environment: dict[str, str],
    cell: Cell,
    cpus: float,
    concurrency: int,
    duration: float,
) -> Row:
    """Start the app for one cell, overload it, read the server, remove the app."""
    wait_for_no_sessions(monitor, user)
    monitor.reset_high_water_mark()
    refused_before = monitor.status("Connection_errors_max_connections")
    started = time.monotonic()
    app = stack.start_app(image, {**base_environment, **cell.environment}, cpus=cpus, timeout=120)
    healthy = time.monotonic() - started
    try:
        # A short warm-up opens the threads' connections; the peak still counts it.
        Load(app.port, PAGE, concurrency=concurrency, duration=WARM_UP, timeout=30).run()
        result = Load(app.port, PAGE, concurrency=concurrency, duration=duration, timeout=30).run()
        peak = monitor.status("Max_used_connections") - 1  # less the monitor's session
        refused = monitor.status("Connection_errors_max_connections") - refused_before
    finally:
        stack.remove(app)
    return Row(
        cell=cell,
        workers=cell.workers or app.record.plan.workers,
        threads=cell.threads or app.record.plan.threads,
        requests_per_second=result.ok / result.seconds if result.seconds else 0.0,
        requests=result.total,
        failed=result.failed,
        p50=result.percentile(0.5),
        p99=result.percentile(0.99),
        app_peak=peak,
        refused_1040=refused,
        start_to_healthy=healthy,
    )


def table(rows: list[Row]) -> list[str]:
    """Markdown rows, with each cell's ratio to the best grid cell."""
    best = max((r.requests_per_second for r in rows if r.cell.grid), default=0.0)
    lines = [
        "| configuration | workers x threads | req/s | ratio to best grid | failed | "
        "p50 s | p99 s | peak connections | refused (1040) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ordered = [r for r in rows if not r.cell.grid] + sorted(
        (r for r in rows if r.cell.grid), key=lambda r: -r.requests_per_second
    )
    for row in ordered:
        ratio = row.requests_per_second / best if best else 0.0
        lines.append(
            f"| {row.cell.name} | {row.workers} x {row.threads} | {row.requests_per_second:.0f} | "
            f"{ratio:.2f} | {row.failed} of {row.requests} | {row.p50:.3f} | {row.p99:.3f} | "
            f"{row.app_peak} | {row.refused_1040} |"
        )
    return lines


def confirmation(rows: list[Row], run_cell: Callable[[Cell], Row], rounds: int) -> list[str]:
    """Measure the plan and the three best grid cells again, interleaved, and average.

    One measurement per cell is noisy (the two "auto" rows above show how much), and the
    best of many noisy cells is lucky: the averages give the plan's honest ratio.
    """
    grid = sorted((r for r in rows if r.cell.grid), key=lambda r: -r.requests_per_second)
    auto = [r for r in rows if r.cell.name.startswith("auto") and r.cell.environment == {}]
    if not grid or not auto or rounds < 1:
        return []
    candidates = [auto[0].cell, *(r.cell for r in grid[:3])]
    seen: dict[str, list[float]] = {
        cell.name: [r.requests_per_second for r in rows if r.cell.environment == cell.environment]
        for cell in candidates
    }
    for _ in range(rounds):
        for cell in candidates:
            seen[cell.name].append(run_cell(cell).requests_per_second)
    means = {name: statistics.mean(values) for name, values in seen.items()}
    best = max(means[cell.name] for cell in candidates[1:])
    lines = [
        f"Confirmation: the plan and the three best grid cells measured {rounds} more times, "
        "interleaved; the mean of every measurement of each.",
        "",
        "| configuration | req/s, each measurement | mean | ratio to best mean |",
        "|---|---|---:|---:|",
    ]
    for cell in candidates:
        values = ", ".join(f"{value:.0f}" for value in seen[cell.name])
        lines.append(
            f"| {cell.name} | {values} | {means[cell.name]:.0f} | {means[cell.name] / best:.2f} |"
        )
    return lines


@dataclasses.dataclass(frozen=True)
class GridFigures:
    """One CPU limit's grid: throughput by (workers, threads), and the plan's cell."""

    cpus: float
    budget: int
    requests_per_second: dict[tuple[int, int], float]
    plan: tuple[int, int] | None


def grid_figures(cpus: float, budget: int, rows: list[Row]) -> GridFigures:
    """The grid's figures from a run's rows; the plan is the first "auto" row's shape."""
    plan = next(((r.workers, r.threads) for r in rows if r.cell.name == "auto"), None)
    cells = {(r.workers, r.threads): r.requests_per_second for r in rows if r.cell.grid}
    return GridFigures(cpus, budget, cells, plan)


#: A section of results.md, and the rows of its table that the heatmap needs.
SECTION = re.compile(r"^### App `--cpus ([\d.]+)`, server max_connections \d+ \(budget (\d+)\)$")
TABLE_ROW = re.compile(r"^\| (auto|grid \d+ x \d+) \| (\d+) x (\d+) \| (\d+) \|")


def figures_from_results(text: str) -> list[GridFigures]:
    """Each grid's figures as written in a results.md, to draw them again without a run."""
    found: list[GridFigures] = []
    for line in text.splitlines():
        if section := SECTION.match(line):
            found.append(GridFigures(float(section[1]), int(section[2]), {}, None))
        elif found and (row := TABLE_ROW.match(line)):
            name, workers, threads, rate = row[1], int(row[2]), int(row[3]), float(row[4])
            if name.startswith("grid"):
                found[-1].requests_per_second[workers, threads] = rate
            elif found[-1].plan is None:
                found[-1] = dataclasses.replace(found[-1], plan=(workers, threads))
    return found


def heatmap_name(cpus: float) -> str:
    """The file name of one CPU limit's heatmap, beside results.md."""
    return f"heatmap-cpus-{cpus:g}.svg"


def heatmap_link(cpus: float) -> str:
    """The line in results.md that links a section to its heatmap."""
    name = heatmap_name(cpus)
    return f"Heatmap (req/s by workers x threads, the plan's cell marked): [{name}]({name})"


def grid_heatmap(figures: GridFigures) -> str:
    """One grid as an SVG heatmap (kitbuild verify's chart code), the plan's cell outlined."""
    workers = grid_workers(figures.cpus)
    over = {(w, t): "over budget" for w in workers for t in GRID_THREADS if w * t > figures.budget}
    chart = heatmap(
        f"App --cpus {figures.cpus:g}: requests answered per second",
        f"server max_connections {MAX_CONNECTIONS}, budget {figures.budget}; "
        "one measurement per cell (bench/results.md)",
        list(workers),
        GRID_THREADS,
        figures.requests_per_second,
        marked=figures.plan,
        mark_label="plan",
        unit="req/s",
        row_title="workers",
        column_title="threads per worker",
        missing="not run",
        notes=over,
    )
    return render_heatmap(chart)


def write_heatmaps(results: Path, grids: list[GridFigures]) -> list[Path]:
    """Write each grid's heatmap beside ``results``; return the files written."""
    written = []
    for figures in grids:
        path = results.parent / heatmap_name(figures.cpus)
        path.write_text(grid_heatmap(figures))
        written.append(path)
    return written


def link_heatmaps(text: str) -> str:
    """results.md with a heatmap link under each section's heading (once)."""
    lines = text.splitlines()
    out: list[str] = []
    for index, line in enumerate(lines):
        out.append(line)
        section = SECTION.match(line)
        if section:
            link = heatmap_link(float(section[1]))
            if link not in lines[index + 1 : index + 3]:
                out += ["", link]
    return "\n".join(out) + "\n"


def plan_seconds() -> float:
    """Seconds to read this machine's limits and make a plan, as the entrypoint does."""
    env = {"DATABASE_MAX_CONNECTIONS": "100"}

    def once() -> None:
        settings, sources = capacity.read_settings({}, env)
        capacity.make_plan(settings, capacity.read_limits(), sources)

    runs = 2000
    return min(timeit.repeat(once, number=runs, repeat=3)) / runs


def main(argv: list[str]) -> int:
    """Run every cell at every CPU limit and write the Markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="mysite:latest")
    parser.add_argument(
        "--cpus",
        default=parser_default_cpus,
        help="comma-separated CPU limits (default: 1,2; the worker study: 0.5,1,1.5,2)",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds of load per cell (8; study: 4)"
    )
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke run")
    parser.add_argument(
        "--confirm", type=int, default=2, help="rounds re-measuring the plan and the best cells"
    )
    parser.add_argument("--no-builds", action="store_true", help="skip bench/build_times.py")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument(
        "--study",
        choices=("grid", "workers"),
        default="grid",
        help="grid: every configuration once (the default); workers: the worker-rule study",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of the worker study"
    )
    parser.add_argument(
        "--app-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for every app container of the worker study (repeatable), e.g. "
        "GUNICORN_CMD_ARGS=--worker-connections=16 to compare a gunicorn setting",
    )
    parser.add_argument(
        "--heatmaps-only",
        action="store_true",
        help="draw the heatmaps again from the figures in --output, without a run",
    )
    args = parser.parse_args(argv)
    if args.heatmaps_only:
        text = args.output.read_text()
        for path in write_heatmaps(args.output, figures_from_results(text)):
            print(f"wrote {path}")
        args.output.write_text(link_heatmaps(text))
        return 0
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    if args.study == "workers":
        args.duration = args.duration or 4.0
        return run_worker_study(args, argv)
    args.duration = args.duration or 8.0
    host_cpus = os.cpu_count() or 1
    begun = time.monotonic()

    gateway = DockerGateway.connect()
    server_image = MYSQL.ensure(gateway)
    credentials = new_credentials()
    environment = app_environment(parse_options(args.image), credentials)
    environment["DATABASE_MAX_CONNECTIONS"] = str(MAX_CONNECTIONS)
    budget_plan = capacity.make_plan(
        capacity.Settings(max_connections=MAX_CONNECTIONS, cpus=1.0), capacity.Limits("none")
    )
    budget = budget_plan.budget
    concurrency = 5 * budget  # at least 5 x the capacity of every cell
    sections: list[str] = []
    grids: list[GridFigures] = []
    healthy_times: list[float] = []
    stack = VerifyStack(gateway, f"bench-{secrets.token_hex(4)}")
    try:
        server = stack.start_database(server_image, MAX_CONNECTIONS, credentials)
        stack.run_migrate(args.image, environment, timeout=120)
        monitor = ServerSession(
            "127.0.0.1", server.port, user="root", password=credentials.root_password
        )
        for cpus in (float(text) for text in args.cpus.split(",")):

            def run_cell(cell: Cell, cpus: float = cpus) -> Row:
                row = measure(
                    stack,
                    monitor,
                    user=credentials.user,
                    image=args.image,
                    base_environment=environment,
                    cell=cell,
                    cpus=cpus,
                    concurrency=concurrency,
                    duration=args.duration,
                )
                print(
                    f"--cpus {cpus:g} {cell.name}: {row.requests_per_second:.0f} req/s, "
                    f"failed {row.failed}/{row.requests}, peak {row.app_peak}",
                    flush=True,
                )
                healthy_times.append(row.start_to_healthy)
                return row

            rows = [run_cell(cell) for cell in cells_for(cpus, budget, host_cpus, quick=args.quick)]
            grids.append(grid_figures(cpus, budget, rows))
            sections += [
                f"### App `--cpus {cpus:g}`, server max_connections {MAX_CONNECTIONS} "
                f"(budget {budget})",
                "",
                heatmap_link(cpus),
                "",
                *table(rows),
                "",
                *confirmation(rows, run_cell, args.confirm),
                "",
            ]
        monitor.close()
    finally:
        stack.close()
        gateway.close()

    builds = ""
    if not args.no_builds:
        builds = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "build_times.py")],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        builds = builds[builds.find("## Build times") :]  # the table, not the build's log
    header = [
        "# Benchmark results",
        "",
        f"Made by `python bench/throughput.py{' ' + ' '.join(argv) if argv else ''}` on "
        f"{datetime.date.today().isoformat()}: {platform.machine()}, {host_cpus} CPUs, "
        f"Python {platform.python_version()}, image `{args.image}`, server `{server_image}`.",
        f"Load: {concurrency} clients (5 x the budget), {args.duration:g} s per cell after "
        f"{WARM_UP:g} s of warm-up, "
        f"GET `{PAGE}`, a new client connection per request, on loopback. The load "
        "generator runs on the same 2 CPUs as the app and the server, so absolute figures "
        "are low; compare within one table.",
        "",
    ]
    footer = [
        "### Other figures",
        "",
        f"- Time to read the cgroups and compute a plan: {plan_seconds() * 1e6:.0f} µs.",
        f"- Container start to healthy (median of {len(healthy_times)} starts): "
        f"{statistics.median(healthy_times):.2f} s.",
        f"- Whole run: {(time.monotonic() - begun) / 60:.1f} min.",
        "",
    ]
    study = worker_section(args.output.read_text() if args.output.exists() else "")
    text = "\n".join(header + sections + footer) + "\n" + builds
    args.output.write_text(text + ("\n" + study if study else ""))
    print(f"wrote {args.output}")
    for path in write_heatmaps(args.output, grids):
        print(f"wrote {path}")
    return 0


#: The worker study's section of results.md: a grid run keeps it, a study run replaces it.
STUDY_BEGIN = "<!-- worker study: bench/throughput.py --study workers -->"
STUDY_END = "<!-- end of the worker study -->"


def worker_section(text: str) -> str:
    """The worker study's section of a results.md, markers included ("" when it has none)."""
    begin, end = text.find(STUDY_BEGIN), text.find(STUDY_END)
    if begin < 0 or end < begin:
        return ""
    return text[begin : end + len(STUDY_END)] + "\n"


def with_worker_section(text: str, section: str) -> str:
    """``text`` with its worker-study section replaced by ``section`` (appended if none)."""
    old = worker_section(text)
    if old:
        return text.replace(old, section)
    return text.rstrip("\n") + "\n\n" + section


def run_worker_study(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the worker-rule study and write its section of results.md."""
    if bad := [item for item in args.app_env if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", item)]:
        print(f"throughput: --app-env {bad[0]!r}: give NAME=VALUE", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None:
        print("throughput: the worker study needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    app_env = dict(item.partition("=")[::2] for item in args.app_env)
    cpu_limits = [float(text) for text in args.cpus.split(",")]
    if args.cpus == parser_default_cpus:
        cpu_limits = [1.0, 2.0] if args.quick else [0.5, 1.0, 1.5, 2.0]
    rounds = min(args.rounds, 2) if args.quick else args.rounds
    pairs = [(client, page) for client in wrk.CLIENTS for page in worker_study.PAGES]
    rotations = [pairs[i:] + pairs[:i] for i in range(len(pairs))]
    cells = [(cpus, w) for cpus in cpu_limits for w in worker_study.grid_workers(cpus)]
    begun = time.monotonic()
    load_before = os.getloadavg()
    gateway = DockerGateway.connect()
    server_image = MYSQL.ensure(gateway)
    credentials = new_credentials()
    environment = app_environment(parse_options(args.image), credentials)
    # wrk reaches the container by its address on the run's network (no userland proxy).
    environment.update(DATABASE_MAX_CONNECTIONS=str(MAX_CONNECTIONS), ALLOWED_HOSTS="*")
    environment.update(app_env)
    stack = VerifyStack(gateway, f"bench-{secrets.token_hex(4)}")
    try:
        stack.start_database(server_image, MAX_CONNECTIONS, credentials)
        stack.run_migrate(args.image, environment, timeout=120)

        def measure(cpus: float, workers: int, number: int) -> list[worker_study.Measurement]:
            found = worker_study.measure_cell(
                stack,
                image=args.image,
                environment=environment,
                cpus=cpus,
                workers=workers,
                round_number=number,
                # Each round starts the pairs at a different one: no pair is always first.
                pairs=rotations[number % len(rotations)],
                duration=args.duration,
            )
            for m in found:
                print(
                    f"round {number} --cpus {cpus:g} {m.workers} x {m.threads} {m.client} "
                    f"{m.page}: {m.result.requests_per_second:.0f} req/s, failed "
                    f"{m.result.failed}, throttled {m.throttling.share:.0%}, "
                    f"busiest {m.imbalance:.2f}",
                    flush=True,
                )
            return found

        found = worker_study.run_rounds(measure, cells, rounds)
    finally:
        stack.close()
        gateway.close()
    minutes = (time.monotonic() - begun) / 60
    section = [
        STUDY_BEGIN,
        "## The worker-rule study",
        "",
        f"Made by `python bench/throughput.py {' '.join(argv)}` on "
        f"{datetime.date.today().isoformat()}: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"image `{args.image}`, server `{server_image}` (max_connections {MAX_CONNECTIONS}), "
        f"wrk on the same machine. {len(found)} measurements in {minutes:.1f} min; load "
        f"average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        *worker_study.report(found, rounds=rounds, duration=args.duration),
        "",
        STUDY_END,
        "",
    ]
    text = args.output.read_text() if args.output.exists() else "# Benchmark results\n"
    args.output.write_text(with_worker_section(text, "\n".join(section)))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
