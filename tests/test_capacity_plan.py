"""The plan's arithmetic: the seed's numbers, replicas and surge, and the budget promise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.errors import PlanError
from kitbuild_runtime import capacity

NO_LIMITS = capacity.Limits(cgroup_version="none", affinity_cpus=2)


def plan_for(**flags: str) -> capacity.Plan:
    settings, sources = capacity.read_settings(flags, {})
    return capacity.make_plan(settings, NO_LIMITS, sources)


def test_seed_inputs_give_the_seed_result() -> None:
    """2 CPUs, 1000 connections, 40 reserved, 2 per thread, no cap: 5 workers x 96 threads."""
    plan = plan_for(
        cpus="2", max_connections="1000", reserved="40", connections_per_thread="2", max_threads="0"
    )

    assert (5, 96, 192, 960, 960, 0) == (
        plan.workers,
        plan.threads,
        plan.pool_size,
        plan.peak_connections,
        plan.budget,
        plan.headroom,
    )


def test_default_reserve_is_the_seeds_share_and_at_least_three() -> None:
    """The default reserve is 4 % of max_connections (40 of 1000), never below 3."""
    assert 40 == plan_for(max_connections="1000").reserved
    assert 7 == plan_for(max_connections="151").reserved
    assert 3 == plan_for(max_connections="75").reserved  # exactly 4 %, no float round-up
    assert 3 == plan_for(max_connections="20").reserved


def test_unset_max_connections_assumes_the_server_default() -> None:
    """Without DATABASE_MAX_CONNECTIONS the plan assumes 151 and says so."""
    plan = plan_for()

    assert 151 == plan.max_connections
    assert "not set" in plan.reasons["max_connections"]


def test_replicas_and_surge_share_the_budget() -> None:
    """3 replicas + 1 surge container split 960 connections into 240 each."""
    plan = plan_for(
        cpus="2", max_connections="1000", reserved="40", replicas="3", surge="1", max_threads="0"
    )

    assert 4 == plan.containers
    assert (5, 48) == (plan.workers, plan.threads)
    assert 960 == plan.peak_connections_all


def test_thread_cap_limits_threads() -> None:
    """KIT_MAX_THREADS caps threads per worker and the reason says so."""
    plan = plan_for(cpus="2", max_connections="1000", max_threads="8")

    assert 8 == plan.threads
    assert "capped by --max-threads=8" == plan.reasons["threads"]


def test_default_thread_cap() -> None:
    """Without a cap given, threads stop at the default cap."""
    assert capacity.DEFAULT_MAX_THREADS == plan_for(cpus="2", max_connections="1000").threads


def test_small_budget_reduces_workers_before_threads() -> None:
    """A budget of 4 for 5 workers gives 4 workers x 1 thread, not 0 threads."""
    plan = plan_for(cpus="2", max_connections="10", reserved="6")

    assert (4, 1, 4) == (plan.workers, plan.threads, plan.peak_connections_all)
    assert "reduced to fit 4 connections per container" in plan.reasons["workers"]


@pytest.mark.parametrize(
    ("cpus", "workers"),
    [
        ("0.25", 1),  # 2 x 0.25 + 1 = 1.5
        ("0.4", 1),
        ("0.5", 2),  # one worker served 0.72-0.94 of two at half a CPU (docs/plan.md)
        ("0.75", 2),
        ("1", 3),
        ("1.25", 3),
        ("1.5", 4),
        ("1.99", 4),
        ("2", 5),
        ("4", 9),
    ],
)
def test_workers_are_twice_the_cpus_plus_one_rounded_down(cpus: str, workers: int) -> None:
    """Workers = floor(2 x CPUs + 1) at every CPU limit, fractions included, and it says so."""
    plan = plan_for(cpus=cpus, max_connections="1000")

    assert workers == plan.workers
    rounded = "" if workers == 2 * float(cpus) + 1 else ", rounded down"
    assert f"2 x {float(cpus):g} CPUs + 1{rounded}" == plan.reasons["workers"]


@pytest.mark.parametrize(
    ("cpus", "memory", "workers"),
    [("0.5", "128M", 1), ("0.5", "255M", 1), ("0.5", "256M", 2), ("2", "512M", 4), ("2", "64M", 1)],
)
def test_memory_caps_the_cpu_rule_at_memory_over_worker_memory(
    cpus: str, memory: str, workers: int
) -> None:
    """A memory limit caps the rule at memory / 128M per worker, never below one worker."""
    plan = plan_for(cpus=cpus, memory=memory, max_connections="1000")

    assert workers == plan.workers
    capped = workers < int(2 * float(cpus) + 1)
    assert capped == plan.reasons["workers"].endswith("MiB / 128 MiB per worker")


def test_web_concurrency_fixes_workers() -> None:
    """WEB_CONCURRENCY sets workers whatever the CPUs say."""
    settings, sources = capacity.read_settings({}, {"WEB_CONCURRENCY": "3"})
    plan = capacity.make_plan(settings, NO_LIMITS, sources)

    assert 3 == plan.workers
    assert "set by WEB_CONCURRENCY" == plan.reasons["workers"]


def test_web_concurrency_still_yields_to_the_budget() -> None:
    """Even a fixed worker count shrinks rather than break the budget."""
    plan = plan_for(workers="8", max_connections="10", reserved="5")

    assert (5, 1) == (plan.workers, plan.threads)


def test_budget_too_small_for_one_thread_is_refused_with_the_numbers() -> None:
    """When one worker with one thread per container does not fit, PlanError names the numbers."""
    with pytest.raises(PlanError) as error:
        plan_for(max_connections="10", reserved="5", replicas="4", surge="2")

    message = str(error.value)
    assert "10 max_connections - 5 reserved = 5 connections for 6 containers" in message
    assert "\n" not in message


def test_reserved_at_or_above_max_is_refused() -> None:
    """Reserving the whole server leaves nothing: refused, naming both settings."""
    with pytest.raises(PlanError, match=r"--reserved=100 must be below --max-connections=100"):
        plan_for(max_connections="100", reserved="100")


def test_plan_as_dict_has_the_documented_keys() -> None:
    """The JSON form carries at least the keys scripts rely on."""
    data = plan_for().as_dict()

    assert {"cpus", "workers", "threads", "pool_size", "peak_connections", "budget"} <= set(data)
    assert isinstance(data["reasons"], dict)


def test_table_lists_every_number_with_its_reason() -> None:
    """The human table has one line per output, each with its reason."""
    table = capacity.format_table(plan_for(cpus="1.5", max_connections="100"))

    assert "gunicorn workers            4  2 x 1.5 CPUs + 1" in table
    assert 11 == len(table.splitlines())


@given(
    cpus=st.floats(min_value=0.01, max_value=4096),
    memory=st.one_of(st.none(), st.integers(min_value=16 * 1024**2, max_value=1024**4)),
    worker_memory=st.integers(min_value=16 * 1024**2, max_value=4 * 1024**3),
    max_connections=st.integers(min_value=1, max_value=100_000),
    reserved=st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)),
    per_thread=st.integers(min_value=1, max_value=100),
    replicas=st.integers(min_value=1, max_value=10_000),
    surge=st.integers(min_value=0, max_value=10_000),
    workers=st.one_of(st.none(), st.integers(min_value=1, max_value=1024)),
    max_threads=st.integers(min_value=0, max_value=10_000),
)
def test_peak_of_all_containers_never_exceeds_the_budget(
    cpus: float,
    memory: int | None,
    worker_memory: int,
    max_connections: int,
    reserved: int | None,
    per_thread: int,
    replicas: int,
    surge: int,
    workers: int | None,
    max_threads: int,
) -> None:
    """For every valid input: peak of all containers <= budget, workers and threads >= 1.

    The only refusals are the two the rules allow: reserve >= max, or a budget too small
    for one worker with one thread in every container.
    """
    settings = capacity.Settings(
        cpus=cpus,
        memory=memory,
        worker_memory=worker_memory,
        max_connections=max_connections,
        reserved=reserved,
        connections_per_thread=per_thread,
        replicas=replicas,
        surge=surge,
        workers=workers,
        max_threads=max_threads,
    )
    effective_reserve = reserved if reserved is not None else max(3, -(-max_connections * 4 // 100))
    budget = max_connections - effective_reserve
    fits = budget > 0 and budget // (replicas + surge) >= per_thread
    try:
        plan = capacity.make_plan(settings, NO_LIMITS)
    except PlanError:
        assert not fits
        return

    assert fits
    assert plan.workers >= 1
    assert plan.threads >= 1
    assert plan.peak_connections_all <= plan.budget == budget
    assert plan.peak_connections_all == plan.workers * plan.threads * per_thread * (
        replicas + surge
    )
    if max_threads:
        assert plan.threads <= max_threads
