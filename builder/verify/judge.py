"""Judge a verify run: a pure function from what was measured to a verdict."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from builder.verify.load import LoadResult
    from kitbuild_runtime.events import PlanRecord

#: Sessions verify itself holds on the server during the load (the monitor).
MONITOR_SESSIONS = 1


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What one run saw: the app's plan, the load's outcome and the server's counters."""

    plan: PlanRecord
    load: LoadResult
    max_used_connections: int  # the server's high-water mark, verify's monitor included
    refused_1040: int  # Connection_errors_max_connections during the run
    app_connections_after: int  # the app account's sessions once the load ended
    app_running: bool  # whether the app container was still up at the end

    @property
    def app_peak(self) -> int:
        """The app's most connections at once: the high-water mark less verify's monitor."""
        return max(0, self.max_used_connections - MONITOR_SESSIONS)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Pass or fail, with one reason per broken promise."""

    passed: bool
    failures: tuple[str, ...]


def judge(measured: Measurements) -> Verdict:
    """Say whether the run kept every promise; each broken one gets a reason."""
    failures: list[str] = []
    budget = measured.plan.plan.budget
    if measured.app_peak > budget:
        failures.append(
            f"the app held {measured.app_peak} connections at once, over its budget of {budget}"
        )
    if measured.refused_1040:
        failures.append(
            f"the server refused {measured.refused_1040} connections "
            "with error 1040 (Too many connections)"
        )
    load = measured.load
    if load.failed:
        failures.append(
            f"{load.failed} of {load.total} requests failed "
            f"(statuses {_counts(load.statuses)}; no answer {_counts(load.exceptions)})"
        )
    if load.ok == 0:
        failures.append("no request was answered")
    if not measured.app_running:
        failures.append("the app container stopped during the run")
    return Verdict(not failures, tuple(failures))


def _counts(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"
