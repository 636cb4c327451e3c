"""Judge a verify run: a pure function from what was measured to a verdict."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from builder.verify.timeline import EMPTY, Timeline

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
    timeline: Timeline = EMPTY  # the run second by second (not judged: the counters are)

    @property
    def app_peak(self) -> int:
        """The app's most connections at once: the high-water mark less verify's monitor."""
        return max(0, self.max_used_connections - MONITOR_SESSIONS)


#: The promises a run is judged by, in the order the report gives them.
BUDGET_HELD = "budget held"
NO_1040 = "no error 1040"
EVERY_REQUEST_ANSWERED = "every request answered"


@dataclasses.dataclass(frozen=True)
class Promise:
    """One promise of the plan: whether it held, the figures that say so, why it broke."""

    name: str
    figures: str  # the numbers it was judged on, whether it held or not
    failures: tuple[str, ...] = ()

    @property
    def held(self) -> bool:
        """Whether nothing broke it."""
        return not self.failures


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Pass or fail, with one reason per broken promise, and every promise with its figures."""

    passed: bool
    failures: tuple[str, ...]
    promises: tuple[Promise, ...] = ()


def judge(measured: Measurements) -> Verdict:
    """Say whether the run kept every promise; each broken one gets a reason."""
    promises = (_budget_held(measured), _no_1040(measured), _every_request_answered(measured))
    failures = tuple(failure for promise in promises for failure in promise.failures)
    return Verdict(not failures, failures, promises)


def _budget_held(measured: Measurements) -> Promise:
    budget = measured.plan.plan.budget
    figures = (
        f"the app's peak: {measured.app_peak} connections (Max_used_connections "
        f"{measured.max_used_connections} less {MONITOR_SESSIONS} verify session); "
        f"budget {budget}"
    )
    if measured.app_peak > budget:
        return Promise(
            BUDGET_HELD,
            figures,
            (f"the app held {measured.app_peak} connections at once, over its budget of {budget}",),
        )
    return Promise(BUDGET_HELD, figures)


def _no_1040(measured: Measurements) -> Promise:
    figures = f"connections refused with error 1040 during the run: {measured.refused_1040}"
    if measured.refused_1040:
        return Promise(
            NO_1040,
            figures,
            (
                f"the server refused {measured.refused_1040} connections "
                "with error 1040 (Too many connections)",
            ),
        )
    return Promise(NO_1040, figures)


def _every_request_answered(measured: Measurements) -> Promise:
    load = measured.load
    figures = f"{load.total} requests: {load.ok} answered 2xx, {load.failed} not; the app " + (
        "ran throughout" if measured.app_running else "stopped"
    )
    failures = []
    if load.failed:
        failures.append(
            f"{load.failed} of {load.total} requests failed "
            f"(statuses {_counts(load.statuses)}; no answer {_counts(load.exceptions)})"
        )
    if load.ok == 0:
        failures.append("no request was answered")
    if not measured.app_running:
        failures.append("the app container stopped during the run")
    return Promise(EVERY_REQUEST_ANSWERED, figures, tuple(failures))


def _counts(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"
