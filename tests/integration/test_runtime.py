"""The app image at runtime: sized by its plan, inside the database's budget, stopped gracefully.

The tests run kitbuild/mysql and the mysite image on a user-defined network (the server's
alias is ``db``), as a compose file would, with the app limited to one CPU and told the
server's ``max_connections``. They start them with verify's own VerifyStack, which removes
every container, volume and network afterwards, also when a test fails.

Sharing: one network and one migrated server serve the module. Tests 1 and 2 share one app,
in a class, so that app is gone before the later tests start theirs on the same server (its
persistent connections would otherwise eat their budget). The stop test and the read-only
test start their own app; the database-outage test has its own network, server and app.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import secrets
import time
from collections.abc import Iterator, Mapping

import pytest

from builder.engine import Container, DockerGateway
from builder.verify.load import Load, LoadResult, Sample
from builder.verify.options import parse_options
from builder.verify.run import app_environment, new_credentials
from builder.verify.server import Credentials, ServerSession
from builder.verify.stack import RunningApp, RunningServer, VerifyStack
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

MAX_CONNECTIONS = 40
#: The test's own root session, which the server counts in Max_used_connections.
MONITOR_CONNECTIONS = 1


# --------------------------------------------------------------------------------- helpers


def logs_tail(container: Container, limit: int = 3000) -> str:
    """The end of a container's output, for assertion messages."""
    return container.logs()[-limit:] or "(no output, or the container is gone)"


def get(port: int, path: str, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET 127.0.0.1:port/path on a fresh connection; return the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_status(port: int, path: str, wanted: int, *, within: float) -> int | str:
    """Poll GET path until it answers ``wanted`` or ``within`` seconds pass.

    Returns the last status, or the last error's name when nothing answered.
    """
    deadline = time.monotonic() + within
    last: int | str = "no answer"
    while True:
        try:
            last = get(port, path)[0]
        except (OSError, http.client.HTTPException) as error:
            last = type(error).__name__
        if last == wanted or time.monotonic() > deadline:
            return last
        time.sleep(0.5)


def lost_lines(samples: list[Sample], origin: float) -> list[str]:
    """Lost requests as "started +1.234s, ended +2.345s, receive:RemoteDisconnected"."""
    return [
        f"started {s.started - origin:+.3f}s ended {s.finished - origin:+.3f}s {s.phase}:{s.error}"
        for s in samples
    ]


class Server:
    """The module's stack: a migrated kitbuild/mysql at max_connections 40, alias ``db``."""

    def __init__(self, stack: VerifyStack, server: RunningServer, credentials: Credentials) -> None:
        """Keep what the app and the monitor need."""
        self.stack, self.server, self.credentials = stack, server, credentials
        self.environment = app_environment(
            parse_options("unused", max_connections=str(MAX_CONNECTIONS)), credentials
        )

    def root(self) -> ServerSession:
        """A root session over the published port (counted by the server like any other)."""
        return ServerSession(
            "127.0.0.1", self.server.port, user="root", password=self.credentials.root_password
        )

    @contextlib.contextmanager
    def app(
        self,
        image: str,
        environment: dict[str, str | None] | None = None,
        *,
        read_only: bool = False,
        tmpfs: Mapping[str, str] | None = None,
    ) -> Iterator[RunningApp]:
        """The app serving on one CPU, once /healthz answers 200; removed afterwards.

        ``environment`` changes the app's environment; a None value removes that variable.
        ``read_only`` and ``tmpfs`` go to :meth:`VerifyStack.start_app` as they are.
        """
        merged = {**self.environment, **(environment or {})}
        running = self.stack.start_app(
            image,
            {name: text for name, text in merged.items() if text is not None},
            cpus=1.0,
            timeout=60,
            read_only=read_only,
            tmpfs=tmpfs,
        )
        try:
            yield running
        finally:
            self.stack.remove(running)


@contextlib.contextmanager
def server(gateway: DockerGateway, server_image: str, app_image: str) -> Iterator[Server]:
    """A new stack with its server started and migrated by the image's ``migrate``."""
    stack = VerifyStack(gateway, f"test-runtime-{secrets.token_hex(4)}")
    try:
        credentials = new_credentials()
        running = stack.start_database(server_image, MAX_CONNECTIONS, credentials)
        served = Server(stack, running, credentials)
        stack.run_migrate(app_image, served.environment, timeout=120)
        yield served
    finally:
        stack.close()


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared_database(
    gateway: DockerGateway, mysql_server_image: str, mysite_image: Built
) -> Iterator[Server]:
    """The module's server, migrated once by the image's ``migrate`` command."""
    with server(gateway, mysql_server_image, mysite_image.tag) as served:
        yield served


@pytest.fixture(scope="class")
def shared_app(shared_database: Server, mysite_image: Built) -> Iterator[RunningApp]:
    """One app for the tests of a class; removed when the class is done."""
    with shared_database.app(mysite_image.tag) as running:
        yield running


# ----------------------------------------------------------------------------------- tests


class TestSizedByThePlan:
    """One app container, sized by the plan it logged, under normal and excessive load."""

    def test_worker_processes_match_the_plan(self, shared_app: RunningApp) -> None:
        """PID 1 (gunicorn's master) has exactly as many worker children as the plan's workers."""
        plan = shared_app.record.plan
        deadline = time.monotonic() + 10  # workers fork within moments of the first answer
        workers = shared_app.container.child_commands()
        while len(workers) != plan.workers and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = shared_app.container.child_commands()

        assert plan.workers == len(workers), workers

    def test_overload_stays_inside_the_connection_budget(
        self, shared_app: RunningApp, shared_database: Server
    ) -> None:
        """5x more clients than threads for 10 s: every one gets 200, and no more connections.

        The server never sees more connections from the app than the plan's peak, and the
        peak is within the budget.
        """
        plan = shared_app.record.plan
        concurrency = 5 * plan.workers * plan.threads
        with shared_database.root() as monitor:
            monitor.reset_high_water_mark()  # Max_used_connections restarts from what is open
            result = Load(
                shared_app.port, "/db/sleep/?seconds=0.05", concurrency=concurrency, duration=10
            ).run()
            max_used = monitor.status("Max_used_connections")
        used_by_app = max_used - MONITOR_CONNECTIONS
        numbers = f"{result.summary()}; max_used={max_used}; plan={plan}"

        assert {200: result.total} == result.statuses, numbers
        assert 0 == result.failed, numbers
        assert result.ok >= concurrency, numbers  # every client was answered, repeatedly
        assert used_by_app <= plan.peak_connections <= plan.budget, numbers


def test_stop_during_load_answers_every_request_it_accepted(
    mysite_image: Built, shared_database: Server
) -> None:
    """`docker stop` (SIGTERM, 70 s) under load: each request sent gets a complete response.

    Clients hold 1 s requests, twice as many as the app has threads, so requests are both
    running and queued when SIGTERM lands. After the stop, connections may be refused (or
    find no host), which is counted apart; a reset or an empty reply after sending is lost.
    The clients talk to the container's own address: through the published port, the
    engine's userland proxy would accept connections that the app has stopped accepting
    and then drop them, which would look like lost requests that the app never saw.
    """
    with shared_database.app(mysite_image.tag) as running:
        plan = running.record.plan
        load = Load(
            8000,
            "/db/sleep/?seconds=1",
            host=running.address,
            host_header="localhost",
            concurrency=min(300, 2 * plan.workers * plan.threads),
            duration=90,
            timeout=75,
            connect_timeout=2,
        )
        load.start()
        try:
            time.sleep(3)  # every client has had requests answered and has one in flight
            stop_at = time.monotonic()
            running.container.stop(timeout=70)
            stopped_in = time.monotonic() - stop_at
            time.sleep(1)  # clients now meet a server that is gone
        finally:
            load.stop()
            result: LoadResult = load.join()
        state = running.container.exit_state()
    in_flight = [s for s in result.samples if s.started < stop_at < s.finished and s.status]
    lost_after = sum(1 for s in result.lost_samples if s.started >= stop_at)
    numbers = (
        f"{result.summary()}; not sent={result.not_sent}; stop took {stopped_in:.1f}s; "
        f"lost that started before/after the stop: {result.lost - lost_after}/{lost_after}"
    )

    assert [] == lost_lines(result.lost_samples, stop_at), numbers
    assert {200} == set(result.statuses), numbers
    assert in_flight, numbers  # SIGTERM really landed on requests in flight
    assert (0, False) == (state.code, state.oom_killed), numbers


def test_read_only_root_filesystem_serves_pages(
    mysite_image: Built, shared_database: Server
) -> None:
    """With read_only=True and only /tmp as tmpfs, the app starts and /hits/ answers 200."""
    with shared_database.app(mysite_image.tag, read_only=True, tmpfs={"/tmp": ""}) as running:
        status, body = get(running.port, "/hits/")
        read_only = running.container.inspect()["HostConfig"]["ReadonlyRootfs"]
        output = logs_tail(running.container)

    assert (True, 200) == (read_only, status), f"{body[:500]!r}\n{output}"
    assert json.loads(body)["hits"] >= 1


def test_unset_max_connections_is_asked_from_the_server(
    mysite_image: Built, shared_database: Server
) -> None:
    """Without DATABASE_MAX_CONNECTIONS the plan takes the server's @@max_connections."""
    with shared_database.app(
        mysite_image.tag, environment={"DATABASE_MAX_CONNECTIONS": None}
    ) as running:
        plan = running.record.plan

    assert MAX_CONNECTIONS == plan.max_connections
    assert "the server's @@max_connections" in plan.reasons["max_connections"]
    assert plan.peak_connections <= plan.budget


def test_health_follows_the_database_and_liveness_does_not(
    gateway: DockerGateway, mysite_image: Built, mysql_server_image: str
) -> None:
    """/healthz answers 503 once the server is stopped, and 200 again once it is back.

    /livez (the liveness path) answers 200 throughout: a database outage makes the app
    unready, and must not get it restarted. This test stops its server, so it has a
    network, a server and an app of its own.
    """
    with (
        server(gateway, mysql_server_image, mysite_image.tag) as own,
        own.app(mysite_image.tag) as running,
    ):
        live_before = get(running.port, "/livez")
        own.server.container.stop(timeout=30)
        down = wait_for_status(running.port, "/healthz", 503, within=30)
        live_while_down = get(running.port, "/livez")
        ready_while_down = get(running.port, "/healthz")[0]
        own.server.container.start()
        up = wait_for_status(running.port, "/healthz", 200, within=60)
        output = logs_tail(running.container)

    assert (503, 503, 200) == (down, ready_while_down, up), output
    assert (200, b"live\n") == live_before == live_while_down, output
