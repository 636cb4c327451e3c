"""The worker-rule study's pure parts: wrk's report, spreads, cgroup throttling, rule scores."""

from __future__ import annotations

import pytest

from bench import throughput, worker_study, wrk
from bench.worker_study import Measurement, Spread, Throttling

KEEP_ALIVE_REPORT = """\
Running 4s test @ http://172.18.0.3:8000/db/sleep/?seconds=0.02
  2 threads and 128 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   250.09ms   66.69ms 744.39ms   81.83%
    Req/Sec   255.85    42.02   387.00     70.00%
  Latency Distribution
     50%  247.97ms
     75%  282.18ms
     90%  319.18ms
     99%    1.02s
  2044 requests in 4.01s, 1.40MB read
Requests/sec:    509.73
Transfer/sec:    357.39KB
"""

ERRORS_REPORT = """\
Running 4s test @ http://172.18.0.3:8000/page/
  2 threads and 128 connections
  Latency Distribution
     50%  900.00us
     99%   16.71ms
  996 requests in 4.00s, 505.78KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 10
Requests/sec:    249.00
"""


def test_wrk_report_gives_requests_time_and_percentiles() -> None:
    """A clean report: every request answered, p50 and p99 in seconds."""
    result = wrk.parse(KEEP_ALIVE_REPORT)

    assert (result.requests, result.seconds, result.failed) == (2044, 4.01, 0)
    assert result.p50 == pytest.approx(0.24797)
    assert result.p99 == pytest.approx(1.02)
    assert result.requests_per_second == pytest.approx(2044 / 4.01)


def test_wrk_failures_count_socket_errors_and_non_2xx() -> None:
    """Socket errors and non-2xx answers are failures; only answered requests make req/s."""
    result = wrk.parse(ERRORS_REPORT)

    assert (result.socket_errors, result.non_2xx, result.failed) == (5, 10, 15)
    assert result.requests_per_second == pytest.approx(986 / 4.0)
    assert result.p50 == pytest.approx(0.0009)


def test_wrk_output_that_is_no_report_is_an_error() -> None:
    """Wrk's usage text (or nothing) is refused, naming what came instead."""
    with pytest.raises(wrk.WrkReportError, match="not a wrk report: Usage: wrk"):
        wrk.parse("Usage: wrk <options> <url>\n")
    with pytest.raises(wrk.WrkReportError, match="no output"):
        wrk.parse("")


def test_per_request_client_asks_the_server_to_close_each_connection() -> None:
    """Only the per-request kind sends Connection: close; both allow slow answers."""
    keep = wrk.command("http://a/", client="keep-alive", connections=128, seconds=4)
    close = wrk.command("http://a/", client="per-request", connections=128, seconds=4)

    assert "Connection: close" not in keep
    assert close[-3:] == ["--header", "Connection: close", "http://a/"]
    assert {"--connections=128", "--duration=4s", "--timeout=20s"} <= set(keep)
    with pytest.raises(ValueError, match="unknown client 'http/2'"):
        wrk.command("http://a/", client="http/2", connections=1, seconds=1)


@pytest.mark.parametrize(
    ("values", "bimodal"),
    [
        ((520, 530, 750, 760, 755), True),  # two groups of 2 and 3
        ((500, 510, 505, 520, 515), False),  # one group
        ((500, 505, 510, 515, 800), False),  # one outlier is not a mode
        ((500, 800, 510), False),  # too few to tell
    ],
)
def test_bimodal_needs_two_groups_of_two_split_by_a_wide_gap(
    values: tuple[float, ...], bimodal: bool
) -> None:
    """The report calls a cell bimodal only for two real groups, not for one outlier."""
    assert Spread(tuple(map(float, values))).bimodal() is bimodal


def test_spread_reports_min_median_max() -> None:
    """Min, median and max of the measurements; an empty spread is all zeros."""
    spread = Spread((3.0, 1.0, 2.0, 10.0, 4.0))

    assert (spread.low, spread.median, spread.high) == (1.0, 3.0, 10.0)
    assert (Spread(()).low, Spread(()).median, Spread(()).high) == (0.0, 0.0, 0.0)


def test_access_log_pids_give_each_workers_share() -> None:
    """Access-log lines of "<pid>" count per worker; other log lines are ignored."""
    log = '<7>\n<8>\n<7>\n{"event": "kitbuild.plan"}\n<7>\n[INFO] Booting worker with pid: 9\n'
    counts = worker_study.access_counts(log)

    assert counts == {7: 3, 8: 1}
    # 4 requests over 3 workers: an even share is 4/3; the busiest did 3 of them.
    assert worker_study.worker_imbalance(counts, 3) == pytest.approx(3 / (4 / 3))
    assert worker_study.worker_imbalance({}, 3) == 0.0


def test_throttling_from_cgroup_v1_and_v2_cpu_stat() -> None:
    """v1 counts throttled time in ns, v2 in µs; both give periods and seconds."""
    v1_before = worker_study.parse_cpu_stat("nr_periods 10\nnr_throttled 2\nthrottled_time 0\n")
    v1_after = worker_study.parse_cpu_stat(
        "nr_periods 110\nnr_throttled 52\nthrottled_time 1500000000\nnr_bursts 0\n"
    )
    v2_before = worker_study.parse_cpu_stat("nr_periods 0\nthrottled_usec 0\n")
    v2_after = worker_study.parse_cpu_stat(
        "usage_usec 9\nnr_periods 40\nnr_throttled 10\nthrottled_usec 250000\n"
    )

    assert worker_study.throttling(v1_before, v1_after) == Throttling(100, 50, 1.5)
    assert worker_study.throttling(v1_before, v1_after).share == 0.5
    assert worker_study.throttling(v2_before, v2_after) == Throttling(40, 10, 0.25)
    assert v2_before == {"nr_periods": 0, "throttled_usec": 0}
    assert Throttling(0, 0, 0.0).share == 0.0


@pytest.mark.parametrize(
    ("cpus", "workers"),
    [(0.5, [1, 2]), (1.0, [1, 2, 3]), (1.5, [2, 3, 4]), (2.0, [2, 3, 4, 5])],
)
def test_grid_spans_ceil_cpus_to_twice_cpus_plus_one(cpus: float, workers: list[int]) -> None:
    """The study measures from one process per CPU up to the old 2 x CPUs + 1."""
    assert list(worker_study.grid_workers(cpus)) == workers


@pytest.mark.parametrize("cpus", [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
def test_shipped_rule_is_the_plans_rule(cpus: float) -> None:
    """The rule the study marks as shipped picks what capacity.make_plan picks."""
    assert worker_study.RULES[worker_study.SHIPPED_RULE](cpus) == worker_study.plan_workers(cpus)


def measurement(cpus: float, workers: int, rate: float, *, round_number: int = 1) -> Measurement:
    """One fake measurement of ``rate`` req/s over 4 s."""
    result = wrk.WrkResult(round(rate * 4), 4.0, 0, 0, 0.1, 0.5)
    return Measurement(
        cpus, workers, 16, "keep-alive", "db", round_number, result, Throttling(10, 1, 0.0), 1.0
    )


def test_rules_are_scored_against_the_best_median() -> None:
    """A rule scores its cell's median over the best median; cells never measured are None."""
    found = [
        measurement(1.0, w, rate, round_number=r)
        for r, shift in enumerate((0, 10, -10), start=1)
        for w, rate in ((1, 400), (2, 500), (3, 450))
        for rate in [rate + shift]
    ]
    table = worker_study.medians(found)
    scores = worker_study.rule_scores(
        table, {"two": lambda cpus: 2, "three": lambda cpus: 3, "nine": lambda cpus: 9}
    )

    assert table == {(1.0, "keep-alive", "db"): {1: 400.0, 2: 500.0, 3: 450.0}}
    assert scores == {
        "two": {(1.0, "keep-alive", "db"): 1.0},
        "three": {(1.0, "keep-alive", "db"): 0.9},
        "nine": {(1.0, "keep-alive", "db"): None},
    }


def test_report_marks_the_plan_and_a_bimodal_cell() -> None:
    """The Markdown names each situation, marks the plan's cell and a two-mode cell."""
    found = [measurement(1.0, 2, rate, round_number=i) for i, rate in enumerate((500, 505, 510))]
    found += [
        measurement(1.0, 3, rate, round_number=i) for i, rate in enumerate((520, 530, 750, 760))
    ]
    text = "\n".join(worker_study.report(found, rounds=4, duration=4.0))

    assert "#### `--cpus 1`, keep-alive client, db page" in text
    plan = worker_study.plan_workers(1.0)
    assert f"| {plan} x 16 (plan at run time) |" in text
    assert "| 520 / **640** / 760 | 1.00 | bimodal |" in text
    assert "| 500 / **505** / 510 | 0.79 | one mode | 0 of 6060 |" in text


def test_rounds_measure_every_cell_once_per_round_in_new_orders() -> None:
    """Interleaving: each round has every cell once, and the orders differ between rounds."""
    seen: list[tuple[int, float, int]] = []

    def measure(cpus: float, workers: int, number: int) -> list[Measurement]:
        seen.append((number, cpus, workers))
        return [measurement(cpus, workers, 100.0, round_number=number)]

    cells = [(1.0, w) for w in (1, 2, 3)] + [(2.0, w) for w in (2, 3, 4, 5)]
    found = worker_study.run_rounds(measure, cells, 5, say=lambda _: None)

    assert len(found) == 35
    orders = [[cell for n, *cell in seen if n == number] for number in range(1, 6)]
    assert all(sorted(map(tuple, order)) == sorted(cells) for order in orders)
    assert len({tuple(map(tuple, order)) for order in orders}) > 1


def test_a_grid_run_keeps_the_worker_study_section_and_a_study_replaces_it() -> None:
    """results.md holds both runs: each rewrites only its own part."""
    section = f"{throughput.STUDY_BEGIN}\nold study\n{throughput.STUDY_END}\n"
    text = f"# Benchmark results\n\ngrid tables\n\n{section}"

    assert throughput.worker_section(text) == section
    assert throughput.worker_section("# no study here\n") == ""
    new = f"{throughput.STUDY_BEGIN}\nnew study\n{throughput.STUDY_END}\n"
    assert throughput.with_worker_section(text, new) == text.replace(section, new)
    assert throughput.with_worker_section("# Benchmark results\n", new) == (
        f"# Benchmark results\n\n{new}"
    )


def test_app_env_that_is_not_name_equals_value_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--app-env worker-connections=16` exits 2 with one line naming it, before any run."""
    assert 2 == throughput.main(["--study", "workers", "--app-env", "worker-connections=16"])
    err = capsys.readouterr().err
    assert err == "throughput: --app-env 'worker-connections=16': give NAME=VALUE\n"
