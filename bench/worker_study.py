"""The worker-rule study: gthread worker counts under a CPU quota, by client kind and page kind.

    python bench/throughput.py --study workers [--image mysite:latest] [--rounds 5]
                               [--cpus 0.5,1,1.5,2] [--duration 4] [--quick]

At each app CPU limit, each worker count from ceil(CPUs) to 2 x CPUs + 1 is one cell,
set through the plan's own knob (WEB_CONCURRENCY), so threads and connections follow the
plan exactly as in production. Every cell starts a container once per round and, in it,
measures every (client, page) pair with wrk:

- clients: keep-alive connections, and a new connection per request (``bench/wrk.py``);
- pages: ``/db/sleep/`` (a 20 ms database wait: DB-bound) and ``/page/`` (a 10 ms wait,
  then a 20-row template: about 5 ms of Python CPU work as well).

Rounds are interleaved (every cell once per round, in a new shuffled order each round),
so a slow minute of this noisy machine falls on all cells alike. Per measurement it
records, besides the throughput, the container's CFS throttling (cgroup cpu.stat) and how
the requests spread over the gunicorn workers (the access log's PIDs), to explain a low
mode when one shows. The rules are then scored against the medians.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import random
import re
import statistics
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench import wrk
from kitbuild_runtime import capacity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from builder.engine import Container
    from builder.verify.stack import VerifyStack

MAX_CONNECTIONS = 100
PAGES = {"db": "/db/sleep/?seconds=0.02", "mixed": "/page/?seconds=0.01&rows=20"}
#: wrk's connections: over every cell's capacity (at most 80 threads at 16 per worker).
CONNECTIONS = 128
#: Seconds of load once per container, before its first measurement: opens the threads'
#: database connections and loads the code.
WARM_UP = 1.0
#: How long to wait for requests a finished wrk left queued in the app to be answered.
DRAIN_LIMIT = 20.0
#: gunicorn's access log reduced to the worker's PID: the requests' spread over workers.
ACCESS_LOG_FORMAT = "%(p)s"

#: The rules scored against the data: name -> workers at a CPU limit (before the caps).
#: SHIPPED_RULE names the one capacity.make_plan applies (a test keeps them in step).
RULES: dict[str, Callable[[float], int]] = {
    "2 x CPUs + 1, rounded down": lambda cpus: max(1, int(2 * cpus + 1)),
    "the old rule: 2 x CPUs + 1, 1 below one CPU": lambda c: 1 if c < 1 else int(2 * c + 1),
    "2 x CPUs": lambda cpus: max(1, round(2 * cpus)),
    "CPUs + 1": lambda cpus: max(1, math.ceil(cpus) + 1),
    "ceil(CPUs)": lambda cpus: max(1, math.ceil(cpus)),
}
SHIPPED_RULE = "2 x CPUs + 1, rounded down"


# --------------------------------------------------------------------------- pure parts


@dataclasses.dataclass(frozen=True)
class Spread:
    """Several measurements of one thing: their range, median and shape."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median (0 when there are none)."""
        return statistics.median(self.values) if self.values else 0.0

    @property
    def low(self) -> float:
        """The smallest value."""
        return min(self.values, default=0.0)

    @property
    def high(self) -> float:
        """The largest value."""
        return max(self.values, default=0.0)

    def bimodal(self, gap: float = 0.12) -> bool:
        """Whether the values fall in two groups of at least two, split by a wide gap.

        The gap is the widest between neighbours once sorted, relative to the median;
        ``gap`` (12%) is about twice the spread of repeated runs of one cell here.
        """
        ordered = sorted(self.values)
        if len(ordered) < 4 or not self.median:
            return False
        widths = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(ordered), start=1)]
        width, split = max(widths)
        return width / self.median > gap and 2 <= split <= len(ordered) - 2


def access_counts(log: str) -> collections.Counter[int]:
    """Requests per worker PID from an access log in ``ACCESS_LOG_FORMAT`` ("<pid>" lines)."""
    return collections.Counter(int(m[1]) for m in re.finditer(r"^<(\d+)>$", log, re.MULTILINE))


def worker_imbalance(counts: Mapping[int, int], workers: int) -> float:
    """The busiest worker's share over an even share (1.0 = even); idle workers count as 0."""
    total = sum(counts.values())
    if not total or workers < 1:
        return 0.0
    return max(counts.values()) / (total / workers)


def parse_cpu_stat(text: str) -> dict[str, int]:
    """The ``name value`` lines of a cgroup's cpu.stat (v1 and v2)."""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            fields[name] = int(value)
    return fields


@dataclasses.dataclass(frozen=True)
class Throttling:
    """CFS throttling over one measurement: periods throttled, and seconds of it."""

    periods: int
    throttled_periods: int
    throttled_seconds: float

    @property
    def share(self) -> float:
        """The share of scheduler periods in which the container hit its quota."""
        return self.throttled_periods / self.periods if self.periods else 0.0


def throttling(before: Mapping[str, int], after: Mapping[str, int]) -> Throttling:
    """The throttling between two cpu.stat readings (v1 counts ns, v2 µs)."""

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    seconds = delta("throttled_time") / 1e9 if "throttled_time" in after else 0.0
    if "throttled_usec" in after:
        seconds = delta("throttled_usec") / 1e6
    return Throttling(delta("nr_periods"), delta("nr_throttled"), seconds)


def plan_workers(cpus: float) -> int:
    """The worker count kitbuild's plan picks at a CPU limit for the study's server."""
    settings = capacity.Settings(max_connections=MAX_CONNECTIONS, cpus=cpus)
    return capacity.make_plan(settings, capacity.Limits("none")).workers


def grid_workers(cpus: float) -> range:
    """The worker counts measured at a CPU limit: ceil(CPUs) to 2 x CPUs + 1.

    Fewer than ceil(CPUs) processes cannot use the quota (one process runs Python on one
    CPU at a time), so those cells only cost time.
    """
    return range(max(1, math.ceil(cpus)), int(2 * cpus + 1) + 1)


# ------------------------------------------------------------------------ measurements


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One wrk run against one cell, with what the container's cgroup and log showed."""

    cpus: float
    workers: int
    threads: int
    client: str
    page: str
    round: int
    result: wrk.WrkResult
    throttling: Throttling
    imbalance: float


def _cpu_stat_reader(container: Container) -> Callable[[], dict[str, int]]:
    """Read the container's cpu.stat from the host's cgroup tree, or else from inside it."""
    candidates = [
        Path(f"/sys/fs/cgroup/cpu/docker/{container.id}/cpu.stat"),  # v1, cgroupfs driver
        Path(f"/sys/fs/cgroup/cpu,cpuacct/docker/{container.id}/cpu.stat"),
        Path(f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope/cpu.stat"),  # v2
        Path(f"/sys/fs/cgroup/docker/{container.id}/cpu.stat"),
    ]
    found = next((path for path in candidates if path.exists()), None)
    if found is not None:
        return lambda: parse_cpu_stat(found.read_text())

    def inside() -> dict[str, int]:
        for path in ("/sys/fs/cgroup/cpu.stat", "/sys/fs/cgroup/cpu/cpu.stat"):
            code, output = container.execute(["cat", path])
            if code == 0:
                return parse_cpu_stat(output)
        return {}

    return inside


def run_wrk(url: str, client: str, seconds: float) -> wrk.WrkResult:
    """One wrk run; a failed wrk is an error, not a zero."""
    argv = wrk.command(url, client=client, connections=CONNECTIONS, seconds=seconds)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return wrk.parse(done.stdout)


def measure_cell(
    stack: VerifyStack,
    *,
    image: str,
    environment: Mapping[str, str],
    cpus: float,
    workers: int,
    round_number: int,
    pairs: Sequence[tuple[str, str]],
    duration: float,
) -> list[Measurement]:
    """Start one cell's container, warm it up, and measure every (client, page) pair in it.

    After each wrk run the app is left to answer what wrk left queued (the access log stops
    growing) before the next run; the worker spread counts those requests too.
    """
    env = {
        **environment,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_ACCESS_LOG_FORMAT": ACCESS_LOG_FORMAT,
    }
    app = stack.start_app(image, env, cpus=cpus, timeout=120)
    plan = app.record.plan

    def served() -> collections.Counter[int]:
        return access_counts(app.container.logs(stdout=True, stderr=False))

    def drain() -> None:
        # wrk stops with requests still queued in gunicorn; they must not count for the next.
        deadline, last = time.monotonic() + DRAIN_LIMIT, -1
        while (now := sum(served().values())) != last and time.monotonic() < deadline:
            last = now
            time.sleep(0.5)

    found: list[Measurement] = []
    try:
        read_stat = _cpu_stat_reader(app.container)
        run_wrk(f"http://{app.address}:8000{PAGES['db']}", "keep-alive", WARM_UP)
        drain()
        for client, page in pairs:
            counts_before = served()
            stat_before = read_stat()
            result = run_wrk(f"http://{app.address}:8000{PAGES[page]}", client, duration)
            stat_after = read_stat()
            drain()
            found.append(
                Measurement(
                    cpus=cpus,
                    workers=plan.workers,
                    threads=plan.threads,
                    client=client,
                    page=page,
                    round=round_number,
                    result=result,
                    throttling=throttling(stat_before, stat_after),
                    imbalance=worker_imbalance(served() - counts_before, plan.workers),
                )
            )
    finally:
        stack.remove(app)
    return found


def run_rounds(
    measure: Callable[[float, int, int], list[Measurement]],
    cells: Sequence[tuple[float, int]],
    rounds: int,
    *,
    seed: int = 13,
    say: Callable[[str], None] = print,
) -> list[Measurement]:
    """Every cell once per round, in a new shuffled order each round."""
    shuffler = random.Random(seed)
    found: list[Measurement] = []
    for number in range(1, rounds + 1):
        order = list(cells)
        shuffler.shuffle(order)
        began = time.monotonic()
        for cpus, workers in order:
            found += measure(cpus, workers, number)
        say(f"round {number}/{rounds}: {len(order)} cells in {time.monotonic() - began:.0f} s")
    return found


# --------------------------------------------------------------------------- the report


Key = tuple[float, str, str]  # (cpus, client, page)


def by_situation(found: Iterable[Measurement]) -> dict[Key, dict[int, list[Measurement]]]:
    """Measurements grouped by (cpus, client, page), then by worker count."""
    grouped: dict[Key, dict[int, list[Measurement]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for m in found:
        grouped[m.cpus, m.client, m.page][m.workers].append(m)
    return grouped


def medians(found: Iterable[Measurement]) -> dict[Key, dict[int, float]]:
    """The median req/s of every worker count in every situation."""
    return {
        key: {
            w: Spread(tuple(m.result.requests_per_second for m in ms)).median
            for w, ms in cells.items()
        }
        for key, cells in by_situation(found).items()
    }


def rule_scores(
    table: Mapping[Key, Mapping[int, float]], rules: Mapping[str, Callable[[float], int]]
) -> dict[str, dict[Key, float | None]]:
    """Each rule's ratio to the best median in each situation (None: its cell not measured)."""
    scores: dict[str, dict[Key, float | None]] = {}
    for name, rule in rules.items():
        scores[name] = {}
        for key, cells in table.items():
            best = max(cells.values(), default=0.0)
            chosen = cells.get(rule(key[0]))
            scores[name][key] = chosen / best if chosen is not None and best else None
    return scores


def report(found: Sequence[Measurement], *, rounds: int, duration: float) -> list[str]:
    """The study's Markdown: per situation a table of cells, then the rules' scores."""
    grouped = by_situation(found)
    table = medians(found)
    lines = [
        f"Each cell: {rounds} interleaved rounds of {duration:g} s of wrk, {CONNECTIONS} "
        f"connections, after {WARM_UP:g} s of warm-up per container. Workers set with "
        "WEB_CONCURRENCY, threads by the plan. req/s: min / **median** / max; ratio: the "
        "median to the best median; "
        "throttled: the share of CFS periods at the quota (median); busiest worker: its "
        "requests over an even share (median; 1.00 is even).",
        "",
    ]
    for key in sorted(grouped):
        cpus, client, page = key
        best = max(table[key].values())
        plan = plan_workers(cpus)
        lines += [
            f"#### `--cpus {cpus:g}`, {client} client, {page} page (`{PAGES[page]}`)",
            "",
            "| workers x threads | req/s min / median / max | ratio | shape | failed | "
            "p99 s (median) | throttled | busiest worker |",
            "|---|---|---:|---|---:|---:|---:|---:|",
        ]
        for workers in sorted(grouped[key]):
            ms = grouped[key][workers]
            spread = Spread(tuple(m.result.requests_per_second for m in ms))
            p99s = [m.result.p99 for m in ms if m.result.p99 is not None]
            mark = " (plan at run time)" if workers == plan else ""
            lines.append(
                f"| {workers} x {ms[0].threads}{mark} | {spread.low:.0f} / "
                f"**{spread.median:.0f}** / {spread.high:.0f} | {spread.median / best:.2f} | "
                f"{'bimodal' if spread.bimodal() else 'one mode'} | "
                f"{sum(m.result.failed for m in ms)} of {sum(m.result.requests for m in ms)} | "
                f"{statistics.median(p99s) if p99s else 0:.3f} | "
                f"{statistics.median(m.throttling.share for m in ms):.0%} | "
                f"{statistics.median(m.imbalance for m in ms):.2f} |"
            )
        lines.append("")
    scores = rule_scores(table, RULES)
    keys = sorted(table)
    lines += [
        "#### The rules against the medians",
        "",
        "Each rule's cell as a ratio to the best median of its situation; worst and mean "
        "over all situations.",
        "",
        "| rule | "
        + " | ".join(f"{c:g} CPU {k[:4]} {p}" for c, k, p in keys)
        + " | worst | mean |",
        "|---|" + "---:|" * (len(keys) + 2),
    ]
    for name, by_key in scores.items():
        known = [v for v in by_key.values() if v is not None]
        cells = " | ".join("-" if by_key[k] is None else f"{by_key[k]:.2f}" for k in keys)
        worst = f"{min(known):.2f}" if known else "-"
        mean = f"{statistics.mean(known):.2f}" if known else "-"
        lines.append(f"| {name} | {cells} | {worst} | {mean} |")
    return lines
