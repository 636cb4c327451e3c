"""`serve` orders itself: it waits for the image's migrations, and checks the budget at start.

No orchestrator here: kitbuild/mysql and the mysite image on a user-defined network, started
through verify's VerifyStack (which removes everything afterwards), as an orchestrator that
ignores depends_on would start them: the server empty, the app before its migrations. The
tests run in file order on one server: first unmigrated, then migrated by the image's
``migrate``, then crowded with sessions of the app's own account.
"""

from __future__ import annotations

import http.client
import secrets
import time
from collections.abc import Iterator

import pytest

from builder.engine import Container, ContainerSpec, DockerGateway
from builder.verify.options import parse_options
from builder.verify.run import app_environment, new_credentials
from builder.verify.server import Credentials, ServerSession
from builder.verify.stack import APP_PORT, VerifyStack, http_status
from kitbuild_runtime import events
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

MAX_CONNECTIONS = 40


class Server:
    """The module's server (max_connections 40, alias ``db``) and the app's environment."""

    def __init__(self, stack: VerifyStack, port: int, credentials: Credentials) -> None:
        """Keep what the tests need."""
        self.stack, self.port, self.credentials = stack, port, credentials
        options = parse_options("unused", max_connections=str(MAX_CONNECTIONS))
        self.environment = app_environment(options, credentials)

    def start_app(
        self,
        gateway: DockerGateway,
        image: str,
        tmpfs: dict[str, str] | None = None,
        **variables: str,
    ) -> Container:
        """Start ``serve`` on one CPU (not waiting for anything); the caller removes it."""
        spec = ContainerSpec(
            image,
            environment={**self.environment, **variables},
            labels=self.stack.labels,
            network=self.stack.network,
            publish=[APP_PORT],
            cpus=1.0,
            tmpfs=tmpfs or {},
        )
        return gateway.start(spec)


def wait_for_event(container: Container, event: str, within: float) -> list[dict[str, object]]:
    """Wait until the container logged ``event``; its records."""
    deadline = time.monotonic() + within
    while not (found := events.read(container.logs(stderr=False), event)):
        assert time.monotonic() < deadline, container.logs()[-2000:]
        assert container.running(), container.logs()[-2000:]
        time.sleep(0.5)
    return found


def health(port: int) -> int | str:
    """The health endpoint's status, or the error's name when nothing answers."""
    try:
        return http_status(port, "/healthz", timeout=3)
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__


@pytest.fixture(scope="module")
def server(
    gateway: DockerGateway, mysql_server_image: str, mysite_image: Built
) -> Iterator[Server]:
    """An empty server (nothing migrated yet); the stack is removed afterwards."""
    stack = VerifyStack(gateway, f"test-startup-{secrets.token_hex(4)}")
    try:
        credentials = new_credentials()
        running = stack.start_database(mysql_server_image, MAX_CONNECTIONS, credentials)
        yield Server(stack, running.port, credentials)
    finally:
        stack.close()


def test_serve_gives_up_with_one_line_when_migrations_never_come(
    server: Server, gateway: DockerGateway, mysite_image: Built
) -> None:
    """Unmigrated server, KIT_MIGRATION_WAIT_TIMEOUT=3: exit 1, one line naming the variable."""
    app = server.start_app(gateway, mysite_image.tag, KIT_MIGRATION_WAIT_TIMEOUT="3")
    try:
        status = app.wait(timeout=90)
        stderr = app.logs(stdout=False)
    finally:
        app.remove()

    assert 1 == status
    assert stderr.startswith("kitbuild: error: ")
    assert "still not applied after 3 s (KIT_MIGRATION_WAIT_TIMEOUT)" in stderr
    assert "run the image's `migrate` command" in stderr
    assert 1 == stderr.count("\n"), stderr


def test_serve_waits_unhealthy_until_migrate_has_run(
    server: Server, gateway: DockerGateway, mysite_image: Built
) -> None:
    """Started before its migrations, the app does not listen until `migrate` has run.

    It logs how many migrations it waits for; nothing answers on its port meanwhile; once
    the image's `migrate` has run, it plans, serves and answers /healthz with 200.
    """
    app = server.start_app(gateway, mysite_image.tag, KIT_MIGRATION_WAIT_TIMEOUT="180")
    try:
        port = app.port(APP_PORT)
        (waiting,) = wait_for_event(app, events.MIGRATIONS, within=90)
        time.sleep(3)
        while_waiting = (health(port), app.running(), events.find_plan(app.logs()))
        server.stack.run_migrate(mysite_image.tag, server.environment, timeout=180)
        deadline = time.monotonic() + 60
        while health(port) != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        after = (health(port), events.read(app.logs(stderr=False), events.MIGRATIONS)[-1])
    finally:
        app.remove()

    assert isinstance(waiting["waiting"], int), waiting
    assert waiting["waiting"] > 0, waiting
    assert (True, None) == while_waiting[1:]
    # No HTTP answer at all: Docker's port proxy accepts and drops (or resets) the connection.
    assert while_waiting[0] in {
        "ConnectionRefusedError",
        "ConnectionResetError",
        "RemoteDisconnected",
    }, while_waiting
    assert 200 == after[0]
    assert 0 == after[1]["waiting"], after
    assert isinstance(after[1]["waited"], float), after


def static_warnings(app: Container) -> list[str]:
    """The STATIC_ROOT warnings a container logged."""
    found = events.read(app.logs(stderr=False), events.WARNING)
    return [str(w["message"]) for w in found if "STATIC_ROOT" in str(w["message"])]


def test_a_static_root_emptied_at_run_time_is_warned_about_and_served(
    server: Server, gateway: DockerGateway, mysite_image: Built
) -> None:
    """The mysite image's STATIC_ROOT under an empty tmpfs: one warning naming it, then it serves.

    The same image started as built logs no such warning: its collected files are there.
    """
    hidden = server.start_app(gateway, mysite_image.tag, tmpfs={"/app/staticfiles": ""})
    plain = server.start_app(gateway, mysite_image.tag)
    try:
        wait_for_event(hidden, events.PLAN, within=90)
        wait_for_event(plain, events.PLAN, within=90)
        found = (static_warnings(hidden), static_warnings(plain))
    finally:
        hidden.remove()
        plain.remove()

    (message,), none = found
    assert [] == none
    assert message.startswith("STATIC_ROOT=/app/staticfiles is an empty directory in this")
    assert "differs between the build (--build-env) and the container" in message


def crowd(server: Server, count: int) -> list[ServerSession]:
    """``count`` sessions of the app's own account, held open from this host."""
    return [
        ServerSession(
            "127.0.0.1",
            server.port,
            user=server.credentials.user,
            password=server.credentials.password,
        )
        for _ in range(count)
    ]


def test_a_crowded_server_gets_a_warning_naming_the_numbers(
    server: Server, gateway: DockerGateway, mysite_image: Built
) -> None:
    """30 sessions of the app's account open; a replica planned at 9 of 37 warns, then serves.

    The plan: 1 CPU, 40 connections, 3 replicas + 1 surge: 37 / 4 = 9 per container.
    """
    sessions = crowd(server, 30)
    try:
        app = server.start_app(gateway, mysite_image.tag, KIT_REPLICAS="3", KIT_MAX_SURGE="1")
        try:
            wait_for_event(app, events.PLAN, within=90)
            logged = events.read(app.logs(stderr=False), events.WARNING)
            warnings = [w for w in logged if "open_sessions" in w]
        finally:
            app.remove()
    finally:
        for session in sessions:
            session.close()

    (warning,) = warnings
    assert (30, 1, 9, 39, 37, 3, 1) == (
        warning["open_sessions"],
        warning["clients"],
        warning["peak_connections"],
        warning["projected"],
        warning["budget"],
        warning["replicas"],
        warning["surge"],
    )
    assert "already holds 30 sessions" in warning["message"]


def test_kit_overcommit_refuse_stops_a_replica_the_budget_cannot_hold(
    server: Server, gateway: DockerGateway, mysite_image: Built
) -> None:
    """The same crowd with KIT_OVERCOMMIT=refuse: exit 1, one line with the numbers."""
    sessions = crowd(server, 30)
    try:
        app = server.start_app(
            gateway,
            mysite_image.tag,
            KIT_REPLICAS="3",
            KIT_MAX_SURGE="1",
            KIT_OVERCOMMIT="refuse",
        )
        try:
            status = app.wait(timeout=90)
            stderr = app.logs(stdout=False)
        finally:
            app.remove()
    finally:
        for session in sessions:
            session.close()

    assert 1 == status
    assert stderr.startswith("kitbuild: error: the server already holds 30 sessions")
    assert stderr.rstrip().endswith("(KIT_OVERCOMMIT=refuse)")
    assert 1 == stderr.count("\n"), stderr
