"""Capacity plan: gunicorn workers and threads from the container's limits and the DB budget.

This module is the single source of truth for the sizing arithmetic. ``kitbuild plan``
uses it on the host and the image's entrypoint uses the same package inside the container,
so it depends on the standard library only, runs on any Python >= 3.9 and does no I/O
at import time.

It has three layers, kept apart so each can be tested on its own:

* parsing: pure functions that turn one cgroup file's text into a number; settings are
  parsed by :mod:`kitbuild_runtime.values`, which raises a one-line :class:`PlanError`;
* reading: :func:`read_limits` reads the cgroup files under a root directory (a fixture
  tree in tests) and :func:`read_settings` picks each setting from flags, environment
  or its default;
* planning: :func:`make_plan` is pure arithmetic from :class:`Limits` and
  :class:`Settings` to a :class:`Plan`, with a reason for every number.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, TypeVar

from kitbuild_runtime import values
from kitbuild_runtime.errors import ConfigError, PlanError
from kitbuild_runtime.values import format_bytes

_T = TypeVar("_T")

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")

#: cgroup v1 reports "no memory limit" as a page-rounded 2**63; anything this big is none.
UNLIMITED_MEMORY_THRESHOLD = 1 << 60

#: The seed keeps 40 of 1000 connections back: 4 %. Small servers still keep a few.
RESERVED_PERCENT = 4
RESERVED_MINIMUM = 3

#: MySQL's and MariaDB's default ``max_connections``, used when nothing says otherwise.
SERVER_DEFAULT_MAX_CONNECTIONS = 151

#: Past 16 threads a CPython process gained nothing in bench/throughput.py (the GIL), while
#: each thread holds one more database connection; at every worker count 32 did no better.
DEFAULT_MAX_THREADS = 16

#: A Django + gunicorn gthread worker's resident memory, rounded up.
DEFAULT_WORKER_MEMORY = 128 * 1024 * 1024


# --------------------------------------------------------------------------- parsing


def parse_cpu_max(text: str) -> float | None:
    """Parse cgroup v2 ``cpu.max`` ("$MAX $PERIOD [$BURST]") into CPUs, or None if "max"."""
    fields = text.split()
    if len(fields) < 2:
        raise ValueError(f"expected '$MAX $PERIOD', got {text.strip()!r}")
    quota, period = fields[0], fields[1]  # a third (burst) field may follow: ignored
    if quota == "max":
        return None
    return _quota_cpus(int(quota), int(period))


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """Parse cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``; quota -1 means none."""
    quota = int(quota_text.strip())
    if quota == -1:
        return None
    return _quota_cpus(quota, int(period_text.strip()))


def _quota_cpus(quota: int, period: int) -> float:
    if quota <= 0 or period <= 0:
        raise ValueError(f"quota {quota} and period {period} must both be positive")
    return quota / period


def parse_cpuset(text: str) -> int:
    """Count the CPUs in a cpuset list such as ``0-3,6,8-9``."""
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"range {part!r} runs backwards")
        count += last - first + 1
    if count == 0:
        raise ValueError(f"no CPUs in {text.strip()!r}")
    return count


def parse_memory_limit(text: str) -> int | None:
    """Parse v2 ``memory.max`` or v1 ``memory.limit_in_bytes``; "max" or huge means none."""
    value = text.strip()
    if value == "max":
        return None
    limit = int(value)
    if limit <= 0:
        raise ValueError(f"memory limit {limit} must be positive")
    return None if limit >= UNLIMITED_MEMORY_THRESHOLD else limit


# ------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class Setting:
    """One input of the plan: where it comes from and what values it accepts."""

    name: str
    env: str
    flag: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("cpus", "KIT_CPUS", "--cpus", "CPUs to plan for (default: the cgroup limit)"),
    Setting(
        "memory",
        "KIT_MEMORY",
        "--memory",
        "memory to plan for, e.g. 512M or 2G (default: the cgroup limit)",
    ),
    Setting(
        "worker_memory",
        "KIT_WORKER_MEMORY",
        "--worker-memory",
        "estimated memory of one worker (default: 128M)",
    ),
    Setting(
        "max_connections",
        "DATABASE_MAX_CONNECTIONS",
        "--max-connections",
        f"the server's max_connections (default: {SERVER_DEFAULT_MAX_CONNECTIONS})",
    ),
    Setting(
        "reserved",
        "DATABASE_RESERVED_CONNECTIONS",
        "--reserved",
        "connections kept back for admin, migrations, cron "
        f"(default: {RESERVED_PERCENT}% of max, at least {RESERVED_MINIMUM})",
    ),
    Setting(
        "connections_per_thread",
        "DATABASE_CONNECTIONS_PER_THREAD",
        "--connections-per-thread",
        "DB connections one thread holds: one per database alias it uses (default: 1)",
    ),
    Setting(
        "replicas",
        "KIT_REPLICAS",
        "--replicas",
        "containers sharing the database server (default: 1)",
    ),
    Setting(
        "surge",
        "KIT_MAX_SURGE",
        "--surge",
        "extra containers alive during a rolling update (default: 0)",
    ),
    Setting(
        "workers",
        "WEB_CONCURRENCY",
        "--workers",
        "fix the worker count (default: 2 x CPUs + 1, within memory and budget)",
    ),
    Setting(
        "max_threads",
        "KIT_MAX_THREADS",
        "--max-threads",
        f"cap on threads per worker, 0 for none (default: {DEFAULT_MAX_THREADS})",
    ),
)

SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The plan's validated inputs; ``None`` means "not given: detect or default"."""

    cpus: float | None = None
    memory: int | None = None
    worker_memory: int = DEFAULT_WORKER_MEMORY
    max_connections: int | None = None
    reserved: int | None = None
    connections_per_thread: int = 1
    replicas: int = 1
    surge: int = 0
    workers: int | None = None
    max_threads: int = DEFAULT_MAX_THREADS


def _whole(low: int, high: int, meaning: str) -> Callable[[str, str], object]:
    return lambda label, text: values.whole(label, text, low, high, meaning)


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "cpus": values.cpus,
    "memory": values.size,
    "worker_memory": values.size,
    "max_connections": _whole(1, 100_000, "the server's max_connections"),
    "reserved": _whole(0, 100_000, "connections kept back from the budget"),
    "connections_per_thread": _whole(1, 100, "DB connections per gunicorn thread"),
    "replicas": _whole(1, 10_000, "containers sharing the database"),
    "surge": _whole(0, 10_000, "extra containers during a rolling update"),
    "workers": _whole(1, 1024, "gunicorn worker processes"),
    "max_threads": _whole(0, 10_000, "threads per worker, 0 for no cap"),
}


def read_settings(
    flags: Mapping[str, str | None], env: Mapping[str, str]
) -> tuple[Settings, dict[str, str]]:
    """Validate each setting from its flag, else its environment variable, else its default.

    ``flags`` maps setting names to the text given on the command line (None when absent).
    Returns the settings and, for each setting that was given, where it came from.
    An empty environment variable counts as not set.
    """
    parsed: dict[str, object] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        flag_text = flags.get(setting.name)
        env_text = env.get(setting.env, "")
        if flag_text is not None:
            label, text = setting.flag, flag_text
        elif env_text.strip():
            label, text = setting.env, env_text
        else:
            continue
        try:
            parsed[setting.name] = _PARSERS[setting.name](label, text)
        except ConfigError as error:
            raise PlanError(str(error)) from None
        sources[setting.name] = label
    return Settings(**parsed), sources  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the container's cgroups and the scheduler allow, each None when unlimited."""

    cgroup_version: str  # "v1", "v2" or "none"
    quota_cpus: float | None = None
    cpuset_cpus: int | None = None
    affinity_cpus: int | None = None
    memory: int | None = None


def _default_affinity() -> int | None:
    getaffinity = getattr(os, "sched_getaffinity", None)
    return len(getaffinity(0)) if getaffinity else os.cpu_count()


def read_limits(
    root: Path = DEFAULT_CGROUP_ROOT,
    affinity: Callable[[], int | None] = _default_affinity,
) -> Limits:
    """Read the CPU quota, cpuset and memory limit from the cgroup files under ``root``.

    v2 is recognised by ``cpu.max`` (or ``cgroup.controllers``) at the root, not by
    ``/proc/self/cgroup``: on v1 hosts that file shows host paths and a stray ``0::`` line.
    A missing file means "no limit"; an unreadable or malformed one raises PlanError.
    """
    root = Path(root)
    if (root / "cpu.max").exists() or (root / "cgroup.controllers").exists():
        return Limits(
            cgroup_version="v2",
            quota_cpus=_read(root / "cpu.max", parse_cpu_max),
            cpuset_cpus=_read(root / "cpuset.cpus.effective", parse_cpuset),
            affinity_cpus=affinity(),
            memory=_read(root / "memory.max", parse_memory_limit),
        )
    cpu_dir = next(
        (root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu") if (root / name).is_dir()),
        None,
    )
    cpuset_dir = root / "cpuset"
    memory_dir = root / "memory"
    if cpu_dir is None and not cpuset_dir.is_dir() and not memory_dir.is_dir():
        return Limits(cgroup_version="none", affinity_cpus=affinity())
    quota = None
    if cpu_dir is not None and (cpu_dir / "cpu.cfs_quota_us").exists():
        period_text = _read(cpu_dir / "cpu.cfs_period_us", str) or "100000"
        quota = _read(cpu_dir / "cpu.cfs_quota_us", lambda text: parse_cfs(text, period_text))
    cpuset_file = cpuset_dir / "cpuset.effective_cpus"
    if not cpuset_file.exists():
        cpuset_file = cpuset_dir / "cpuset.cpus"
    return Limits(
        cgroup_version="v1",
        quota_cpus=quota,
        cpuset_cpus=_read(cpuset_file, parse_cpuset),
        affinity_cpus=affinity(),
        memory=_read(memory_dir / "memory.limit_in_bytes", parse_memory_limit),
    )


def _read(path: Path, parse: Callable[[str], _T]) -> _T | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PlanError(
            f"cannot read {path}: {error.strerror}; set KIT_CPUS and KIT_MEMORY to skip detection"
        ) from None
    try:
        return parse(text)
    except ValueError as error:
        raise PlanError(
            f"cannot parse {path} ({text.strip()[:40]!r}: {error}); "
            "set KIT_CPUS and KIT_MEMORY to skip detection"
        ) from None


# -------------------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class Plan:
    """The computed sizing, with a short reason for each number."""

    cpus: float
    memory: int | None
    workers: int
    threads: int
    connections_per_thread: int
    pool_size: int
    peak_connections: int
    containers: int
    peak_connections_all: int
    max_connections: int
    reserved: int
    budget: int
    headroom: int
    reasons: Mapping[str, str]

    def as_dict(self) -> dict[str, object]:
        """Return the plan as JSON-ready data, reasons included."""
        data = dataclasses.asdict(self)
        data["reasons"] = dict(self.reasons)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan :meth:`as_dict` wrote; keys it does not know are ignored."""
        names = {field.name for field in dataclasses.fields(cls)}
        fields = {name: value for name, value in data.items() if name in names}
        fields["reasons"] = dict(fields.get("reasons") or {})
        return cls(**fields)


def _effective_cpus(settings: Settings, limits: Limits) -> tuple[float, str]:
    if settings.cpus is not None:
        return settings.cpus, "given"
    candidates = [
        (limits.quota_cpus, f"cgroup {limits.cgroup_version} CPU quota"),
        (limits.cpuset_cpus, f"cgroup {limits.cgroup_version} cpuset"),
        (limits.affinity_cpus, "CPU affinity"),
    ]
    known = [(value, why) for value, why in candidates if value is not None]
    if not known:
        return float(os.cpu_count() or 1), "os.cpu_count()"
    value, why = min(known, key=lambda pair: pair[0])
    return float(value), why


def make_plan(settings: Settings, limits: Limits, sources: Mapping[str, str] | None = None) -> Plan:
    """Size gunicorn for these limits so all containers together stay within the DB budget.

    workers = 2 x CPUs + 1 rounded down (2 at half a CPU), capped by memory / worker memory,
    unless fixed by WEB_CONCURRENCY; threads = per-container budget / (workers x connections
    per thread), capped by max_threads; when not even one thread per worker fits, workers
    shrink first, and when one worker with one thread does not fit, PlanError.
    """
    sources = sources or {}
    reasons: dict[str, str] = {}

    def given(name: str) -> str:
        return sources.get(name, SETTINGS_BY_NAME[name].flag)

    def set_by(name: str) -> str:
        return f"set by {given(name)}"

    cpus, cpu_reason = _effective_cpus(settings, limits)
    cpus = round(cpus, 3)
    reasons["cpus"] = set_by("cpus") if cpu_reason == "given" else cpu_reason

    memory = settings.memory if settings.memory is not None else limits.memory
    reasons["memory"] = (
        set_by("memory")
        if settings.memory is not None
        else ("cgroup memory limit" if memory is not None else "no memory limit")
    )

    if settings.max_connections is not None:
        max_connections = settings.max_connections
        reasons["max_connections"] = set_by("max_connections")
    else:
        max_connections = SERVER_DEFAULT_MAX_CONNECTIONS
        reasons["max_connections"] = (
            f"DATABASE_MAX_CONNECTIONS not set: the MySQL/MariaDB default {max_connections}"
        )
    if settings.reserved is not None:
        reserved = settings.reserved
        reasons["reserved"] = set_by("reserved")
    else:
        # Integer ceiling: float percentages round 75 x 0.04 up to 4.
        reserved = max(RESERVED_MINIMUM, -(-max_connections * RESERVED_PERCENT // 100))
        reasons["reserved"] = (
            f"default: {RESERVED_PERCENT}% of {max_connections}, at least {RESERVED_MINIMUM}"
        )
    if reserved >= max_connections:
        raise PlanError(
            f"{given('reserved')}={reserved} must be below {given('max_connections')}="
            f"{max_connections}: nothing would be left for the app"
        )
    budget = max_connections - reserved
    reasons["budget"] = f"max_connections {max_connections} - reserved {reserved}"

    per_thread = settings.connections_per_thread
    containers = settings.replicas + settings.surge
    per_container = budget // containers
    if per_container < per_thread:
        raise PlanError(
            f"budget too small: {max_connections} max_connections - {reserved} reserved = "
            f"{budget} connections for {containers} containers ({settings.replicas} replicas + "
            f"{settings.surge} surge) cannot give each one thread at {per_thread} connection(s); "
            "raise DATABASE_MAX_CONNECTIONS or lower DATABASE_RESERVED_CONNECTIONS, "
            "KIT_REPLICAS or KIT_MAX_SURGE"
        )

    if settings.workers is not None:
        workers = settings.workers
        reasons["workers"] = set_by("workers")
    else:
        # Rounded down, and no exception below one CPU: at --cpus 0.5 one gthread worker
        # served 0.72-0.94 of two in bench/worker_study.py (docs/plan.md, "Why the defaults").
        workers = int(2 * cpus + 1)
        exact = workers == 2 * cpus + 1
        reasons["workers"] = f"2 x {cpus:g} CPUs + 1" + ("" if exact else ", rounded down")
        if memory is not None:
            fit = max(1, memory // settings.worker_memory)
            if fit < workers:
                workers = fit
                reasons["workers"] = (
                    f"memory {format_bytes(memory)} / {format_bytes(settings.worker_memory)}"
                    " per worker"
                )
    # Fewer workers before zero threads: every worker needs at least one thread's connections.
    fit = per_container // per_thread
    if fit < workers:
        reasons["workers"] = (
            f"{reasons['workers']} gave {workers}, reduced to fit {per_container} connections"
            f" per container"
        )
        workers = fit

    threads = per_container // (workers * per_thread)
    reasons["threads"] = (
        f"{per_container} connections per container / ({workers} workers x {per_thread} per thread)"
    )
    if settings.max_threads and threads > settings.max_threads:
        threads = settings.max_threads
        reasons["threads"] = (
            f"capped by {given('max_threads')}={threads}"
            if "max_threads" in sources
            else f"capped at the default {threads} per worker (KIT_MAX_THREADS)"
        )

    pool_size = threads * per_thread
    peak = workers * pool_size
    peak_all = peak * containers
    reasons["pool_size"] = f"{threads} threads x {per_thread} connection(s) per thread"
    reasons["peak_connections"] = f"{workers} workers x {pool_size} connections"
    reasons["peak_connections_all"] = (
        f"{peak} x {containers} containers ({settings.replicas} replicas + {settings.surge} surge)"
    )
    return Plan(
        cpus=cpus,
        memory=memory,
        workers=workers,
        threads=threads,
        connections_per_thread=per_thread,
        pool_size=pool_size,
        peak_connections=peak,
        containers=containers,
        peak_connections_all=peak_all,
        max_connections=max_connections,
        reserved=reserved,
        budget=budget,
        headroom=budget - peak_all,
        reasons=reasons,
    )


def format_table(plan: Plan) -> str:
    """Render the plan as an aligned, human-readable table."""
    rows = [
        ("effective CPUs", f"{plan.cpus:g}", "cpus"),
        (
            "memory limit",
            format_bytes(plan.memory) if plan.memory is not None else "none",
            "memory",
        ),
        ("gunicorn workers", str(plan.workers), "workers"),
        ("threads per worker", str(plan.threads), "threads"),
        ("connections per process", str(plan.pool_size), "pool_size"),
        ("peak, this container", str(plan.peak_connections), "peak_connections"),
        ("peak, all containers", str(plan.peak_connections_all), "peak_connections_all"),
        ("server max_connections", str(plan.max_connections), "max_connections"),
        ("reserved", str(plan.reserved), "reserved"),
        ("budget", str(plan.budget), "budget"),
        ("headroom", str(plan.headroom), ""),
    ]
    name_width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    lines = []
    for name, value, key in rows:
        reason = plan.reasons.get(key, "budget - peak of all containers" if not key else "")
        lines.append(f"{name:<{name_width}}  {value:>{value_width}}  {reason}".rstrip())
    return "\n".join(lines)
