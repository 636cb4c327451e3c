"""The start-up checks' logic: the overcommit verdict and the wait for migrations (no Docker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from builder.errors import SchemaTooOld
from kitbuild_runtime import capacity, overcommit, schema
from kitbuild_runtime.overcommit import Sessions


def plan(replicas: int = 3, surge: int = 1) -> capacity.Plan:
    """1 CPU against 40 connections: 3 workers x 3 threads = 9 per container, budget 37."""
    settings = capacity.Settings(cpus=1.0, max_connections=40, replicas=replicas, surge=surge)
    return capacity.make_plan(settings, capacity.Limits(cgroup_version="none"))


@pytest.mark.parametrize(
    ("sessions", "clients", "warns"),
    [
        (27, 3, False),  # three replicas at their peak: 27 + 9 = 36 <= 37
        (28, 4, False),  # ... and a migrate job: 37, still within; 4 clients = 4 containers
        (29, 4, True),  # 29 + 9 = 38 > 37
        (5, 5, True),  # five idle clients: 6 containers where the plan counts 4
        (0, 0, False),  # the first replica
    ],
)
def test_overcommit_is_sessions_over_the_budget_or_more_clients_than_containers(
    sessions: int, clients: int, warns: bool
) -> None:
    """Open sessions + own peak > budget, or more other clients than planned containers."""
    found = overcommit.assess(plan(), Sessions(sessions, clients), replicas=3, surge=1)

    assert warns == (found is not None)


def test_the_warning_names_every_number() -> None:
    """The message and the fields carry sessions, clients, peak, projected, budget, R and S."""
    found = overcommit.assess(plan(), Sessions(33, 6), replicas=3, surge=1)
    assert found is not None

    assert {
        "open_sessions": 33,
        "clients": 6,
        "peak_connections": 9,
        "projected": 42,
        "budget": 37,
        "replicas": 3,
        "surge": 1,
    } == {key: value for key, value in found.fields().items() if key != "message"}
    assert (
        "the server already holds 33 sessions of this app's account from 6 other clients; "
        "with this replica (9 connections at its peak) that makes 42 sessions and 7 clients, "
        "but the budget of 37 is planned for KIT_REPLICAS=3 + KIT_MAX_SURGE=1 = 4 containers "
        "of 9"
    ) in found.message


class Clock:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        """Start at 0."""
        self.now = 0.0

    def time(self) -> float:
        """The current time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Move on."""
        self.now += seconds


def test_the_wait_ends_when_nothing_is_unapplied() -> None:
    """Two looks find migrations pending, the third none: reported once, 4 s waited."""
    looks = iter([["hits.0001_initial", "hits.0002_x"], ["hits.0002_x"], []])
    reports: list[list[str]] = []
    clock = Clock()

    waited = schema.wait_until_migrated(
        60, reports.append, look=lambda: next(looks), clock=clock.time, sleep=clock.sleep
    )

    assert (4.0, [["hits.0001_initial", "hits.0002_x"]]) == (waited, reports)


def test_no_wait_when_the_schema_is_current() -> None:
    """Nothing pending at the first look: no report, 0 s."""
    reports: list[list[str]] = []

    assert 0.0 == schema.wait_until_migrated(60, reports.append, look=list)
    assert [] == reports


def test_the_wait_gives_up_after_the_timeout_naming_the_first_migration() -> None:
    """Still pending after the timeout: SchemaTooOld, one line with the count and the variable."""
    clock = Clock()

    with pytest.raises(SchemaTooOld) as error:
        schema.wait_until_migrated(
            10,
            lambda _: None,
            look=lambda: ["a.0001", "a.0002"],
            clock=clock.time,
            sleep=clock.sleep,
        )

    assert str(error.value).startswith(
        "2 migration(s) of this image still not applied after 10 s (KIT_MIGRATION_WAIT_TIMEOUT),"
        " first a.0001: run the image's `migrate` command"
    )
    assert "\n" not in str(error.value)


def test_a_database_error_during_the_wait_is_retried() -> None:
    """A look that fails (the server restarting) counts as not yet migrated, then succeeds."""
    calls: Iterator[Exception | list[str]] = iter([ConnectionError("gone"), []])
    clock = Clock()

    def look() -> list[str]:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    waited = schema.wait_until_migrated(
        60,
        lambda _: None,
        look=look,
        transient=(ConnectionError,),
        clock=clock.time,
        sleep=clock.sleep,
    )

    assert 2.0 == waited
