"""Reading CPU and memory limits from cgroup v1 and v2 trees."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.errors import PlanError
from kitbuild_runtime import capacity

EIGHT_CPUS = lambda: 8  # noqa: E731 - a host with 8 CPUs in the affinity mask


@pytest.mark.parametrize(
    ("tree", "version", "expected_cpus", "why"),
    [
        ("v1-unlimited", "v1", 4, "cgroup v1 cpuset"),
        ("v1-quota-0.25", "v1", 0.25, "cgroup v1 CPU quota"),
        ("v1-quota-0.5", "v1", 0.5, "cgroup v1 CPU quota"),
        ("v1-cpuacct-quota-1.5", "v1", 1.5, "cgroup v1 CPU quota"),
        ("v1-quota-3", "v1", 3, "cgroup v1 CPU quota"),
        ("v1-cpuset-only", "v1", 2, "cgroup v1 cpuset"),
        ("v2-unlimited", "v2", 4, "cgroup v2 cpuset"),
        ("v2-quota-0.25", "v2", 0.25, "cgroup v2 CPU quota"),
        ("v2-quota-0.5", "v2", 0.5, "cgroup v2 CPU quota"),
        ("v2-quota-1.5", "v2", 1.5, "cgroup v2 CPU quota"),
        ("v2-quota-3-burst", "v2", 3, "cgroup v2 CPU quota"),
        ("v2-cpuset-only", "v2", 1, "cgroup v2 cpuset"),
    ],
)
def test_effective_cpus_is_the_smallest_limit(
    cgroup_root: Callable[[str], Path], tree: str, version: str, expected_cpus: float, why: str
) -> None:
    """Effective CPUs are min(quota, cpuset, affinity), and the reason names the winner."""
    limits = capacity.read_limits(cgroup_root(tree), affinity=EIGHT_CPUS)
    plan = capacity.make_plan(capacity.Settings(), limits)

    assert version == limits.cgroup_version
    assert expected_cpus == plan.cpus
    assert why == plan.reasons["cpus"]


@pytest.mark.parametrize(
    ("tree", "workers"), [("v1-quota-0.25", 1), ("v2-quota-0.25", 1), ("v1-quota-0.5", 2)]
)
def test_quota_below_one_cpu_never_falls_back_to_the_host(
    cgroup_root: Callable[[str], Path], tree: str, workers: int
) -> None:
    """A fractional quota plans from the quota (0.25 gives 1 worker, 0.5 gives 2), not 2 x 8 + 1."""
    limits = capacity.read_limits(cgroup_root(tree), affinity=EIGHT_CPUS)
    plan = capacity.make_plan(capacity.Settings(), limits)

    assert plan.cpus < 1
    assert workers == plan.workers


def test_affinity_wins_when_it_is_the_smallest(cgroup_root: Callable[[str], Path]) -> None:
    """A narrower affinity mask (taskset) than the cgroup's limits sets the CPUs."""
    limits = capacity.read_limits(cgroup_root("v1-quota-3"), affinity=lambda: 2)
    plan = capacity.make_plan(capacity.Settings(), limits)

    assert 2 == plan.cpus
    assert "CPU affinity" == plan.reasons["cpus"]


@pytest.mark.parametrize(
    ("tree", "memory", "workers"),
    [
        ("v1-memory-512m", 512 * 1024**2, 4),  # 2 x 4 + 1 = 9, capped by 512M / 128M
        ("v2-memory-256m", 256 * 1024**2, 2),
        ("v1-unlimited", None, 9),
        ("v2-unlimited", None, 9),
    ],
)
def test_memory_limit_caps_workers(
    cgroup_root: Callable[[str], Path], tree: str, memory: int | None, workers: int
) -> None:
    """Workers x the per-worker estimate fits in the memory limit; huge v1 values mean none."""
    limits = capacity.read_limits(cgroup_root(tree), affinity=EIGHT_CPUS)
    plan = capacity.make_plan(capacity.Settings(), limits)

    assert memory == plan.memory
    assert workers == plan.workers


def test_worker_memory_estimate_is_configurable(cgroup_root: Callable[[str], Path]) -> None:
    """A larger per-worker estimate leaves room for fewer workers."""
    limits = capacity.read_limits(cgroup_root("v1-memory-512m"), affinity=EIGHT_CPUS)
    settings, sources = capacity.read_settings({"worker_memory": "256M"}, {})
    plan = capacity.make_plan(settings, limits, sources)

    assert 2 == plan.workers
    assert "memory 512 MiB / 256 MiB per worker" == plan.reasons["workers"]


def test_memory_smaller_than_one_worker_still_gives_one_worker(
    cgroup_root: Callable[[str], Path],
) -> None:
    """The memory estimate caps workers but never below one."""
    limits = capacity.read_limits(cgroup_root("v2-memory-256m"), affinity=EIGHT_CPUS)
    settings, sources = capacity.read_settings({"worker_memory": "1G"}, {})

    assert 1 == capacity.make_plan(settings, limits, sources).workers


def test_v2_is_detected_by_cpu_max_not_by_proc_self_cgroup(tmp_path: Path) -> None:
    """A root with cpu.max is v2 even without cgroup.controllers; a root with neither is v1."""
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cpu.max").write_text("200000 100000\n")
    (tmp_path / "v1" / "cpu").mkdir(parents=True)
    (tmp_path / "v1" / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "v1" / "cpu" / "cpu.cfs_period_us").write_text("100000\n")

    assert ("v2", 2.0) == _version_and_quota(tmp_path / "v2")
    assert ("v1", 2.0) == _version_and_quota(tmp_path / "v1")


def _version_and_quota(root: Path) -> tuple[str, float | None]:
    limits = capacity.read_limits(root, affinity=EIGHT_CPUS)
    return limits.cgroup_version, limits.quota_cpus


def test_no_cgroup_filesystem_uses_affinity(tmp_path: Path) -> None:
    """Without any cgroup files (not Linux, or not mounted) the affinity mask decides."""
    limits = capacity.read_limits(tmp_path, affinity=lambda: 3)

    assert "none" == limits.cgroup_version
    assert 3 == capacity.make_plan(capacity.Settings(), limits).cpus


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ("v1-malformed-quota", "cpu/cpu.cfs_quota_us"),
        ("v2-malformed-cpu-max", "cpu.max"),
        ("v2-malformed-cpuset", "cpuset.cpus.effective"),
    ],
)
def test_malformed_cgroup_file_names_the_file(
    cgroup_root: Callable[[str], Path], tree: str, path: str
) -> None:
    """A file that cannot be parsed gives one line naming it and the override to use."""
    root = cgroup_root(tree)
    with pytest.raises(PlanError) as error:
        capacity.read_limits(root, affinity=EIGHT_CPUS)

    message = str(error.value)
    assert str(root / path) in message
    assert "KIT_CPUS" in message
    assert "\n" not in message


def test_unreadable_cgroup_file_as_a_directory(tmp_path: Path) -> None:
    """An unreadable cpu.max (here a directory, which even root cannot read) is an error."""
    (tmp_path / "cpu.max").mkdir()

    with pytest.raises(PlanError, match=r"cannot read .*cpu\.max"):
        capacity.read_limits(tmp_path)


@pytest.mark.skipif(not Path("/sys/fs/cgroup").is_dir(), reason="no cgroup filesystem")
def test_this_machine_real_cgroups_report_host_cpus_without_quota() -> None:
    """On this machine (no container limit) the real files give the host's CPUs and no quota."""
    limits = capacity.read_limits()
    plan = capacity.make_plan(capacity.Settings(), limits)

    assert limits.quota_cpus is None
    assert len(os.sched_getaffinity(0)) == plan.cpus
