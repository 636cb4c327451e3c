"""The app image at runtime: sized by its plan, inside the database's budget, stopped gracefully.

The tests run kitbuild/mysql and the mysite image on a user-defined network (the server's
alias is ``db``), as a compose file would, with the app limited to one CPU and told the
server's ``max_connections``. Every container, volume and network is removed afterwards,
also when a test fails.

Sharing: one network and one migrated server serve the module. Tests 1 and 2 share one app,
in a class, so that app is gone before the later tests start theirs on the same server (its
persistent connections would otherwise eat their budget). The stop test and the read-only
test start their own app; the database-outage test has its own network, server and app.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pymysql
import pytest

from builder.load import Load, LoadResult, Sample
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

LABELS = {"io.kitbuild.test": "test_runtime"}
MAX_CONNECTIONS = 40
ONE_CPU = 1_000_000_000
ROOT_PASSWORD = secrets.token_hex(12)
APP_PASSWORD = secrets.token_hex(12)
SECRET_KEY = secrets.token_urlsafe(48)
#: The test's own root session, which the server counts in Max_used_connections.
MONITOR_CONNECTIONS = 1


@dataclasses.dataclass(frozen=True)
class Database:
    """A running kitbuild/mysql container and its 3306 published on 127.0.0.1."""

    container: Any
    port: int

    def root(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        """A root session over the published port (counted by the server like any other)."""
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password=ROOT_PASSWORD,
            connect_timeout=10,
            autocommit=True,
        )


@dataclasses.dataclass(frozen=True)
class App:
    """A serving app container: its published port, its address and the plan it logged."""

    container: Any
    port: int  # 8000 published on 127.0.0.1
    address: str  # the container's own address on the test network
    plan: dict[str, Any]


# --------------------------------------------------------------------------------- helpers


def remove(container: Any) -> None:
    """Remove a container and its anonymous volumes, whatever state it is in."""
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


def logs_tail(container: Any, limit: int = 3000) -> str:
    """The end of a container's output, for assertion messages."""
    try:
        return str(container.logs().decode(errors="replace"))[-limit:]
    except docker.errors.NotFound:
        return "(container gone)"


def published_port(container: Any, port: str) -> int:
    """The 127.0.0.1 port the engine picked for ``port`` (such as "8000/tcp")."""
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"][port][0]["HostPort"])


def exited(container: Any) -> bool:
    """Whether the container has stopped running."""
    container.reload()
    return bool(container.status in {"exited", "dead"})


def get(port: int, path: str, *, timeout: float = 10.0) -> tuple[int, bytes]:
    """GET 127.0.0.1:port/path on a fresh connection; return the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_for_status(
    port: int, path: str, wanted: int, *, within: float, container: Any = None
) -> int | str:
    """Poll GET path until it answers ``wanted`` or ``within`` seconds pass.

    Returns the last status, or the last error's name when nothing answered. Gives up early
    when ``container`` (if given) has exited.
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
        if container is not None and exited(container):
            return f"{last} (container exited)"
        time.sleep(0.5)


def wait_for_log(container: Any, text: bytes, *, count: int, within: float) -> None:
    """Wait until ``text`` appears ``count`` times in the container's output."""
    deadline = time.monotonic() + within
    while container.logs().count(text) < count:
        if exited(container) or time.monotonic() > deadline:
            pytest.fail(f"{text!r} not seen {count} times:\n{logs_tail(container)}")
        time.sleep(0.3)


def plan_of(container: Any) -> dict[str, Any]:
    """The ``kitbuild.plan`` JSON line the serve command printed on stdout."""
    output = container.logs(stdout=True, stderr=False).decode(errors="replace")
    for line in output.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == "kitbuild.plan":
                    return record
    pytest.fail(f"no kitbuild.plan line on the app's stdout:\n{logs_tail(container)}")


def worker_processes(container: Any) -> list[str]:
    """The command lines of PID 1's children: gunicorn's workers, as `docker top` sees them."""
    container.reload()
    master = int(container.attrs["State"]["Pid"])  # the host's PID of the container's PID 1
    top = container.top(ps_args="-eo pid,ppid,args")
    rows = [dict(zip(top["Titles"], row)) for row in top["Processes"]]
    return [row["COMMAND"] for row in rows if int(row["PPID"]) == master]


def app_environment() -> dict[str, str]:
    """What an operator passes the app: the server, its max_connections and Django's keys."""
    return {
        "DATABASE_HOST": "db",
        "DATABASE_NAME": "mysite",
        "DATABASE_USER": "mysite",
        "DATABASE_PASSWORD": APP_PASSWORD,
        "DATABASE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "localhost,127.0.0.1",
    }


def lost_lines(samples: list[Sample], origin: float) -> list[str]:
    """Lost requests as "started +1.234s, ended +2.345s, receive:RemoteDisconnected"."""
    return [
        f"started {s.started - origin:+.3f}s ended {s.finished - origin:+.3f}s {s.phase}:{s.error}"
        for s in samples
    ]


# ---------------------------------------------------------------------- container makers


@contextlib.contextmanager
def network(client: docker.DockerClient) -> Iterator[str]:
    """A user-defined bridge network with a random name, removed afterwards."""
    name = f"kitbuild-test-{secrets.token_hex(4)}"
    created = client.networks.create(name, driver="bridge", labels=LABELS)
    try:
        yield name
    finally:
        # A safety net: the makers below remove their own containers.
        for container in client.containers.list(all=True, filters={"network": name}):
            remove(container)
        created.remove()


@contextlib.contextmanager
def database(client: docker.DockerClient, image: str, network_name: str) -> Iterator[Database]:
    """kitbuild/mysql with --max-connections=40, alias ``db``, ready for connections.

    Its HEALTHCHECK is switched off: each probe is a connection, which would show up in
    Max_used_connections next to the app's. Readiness is the second "ready for connections"
    line (the init server prints the first).
    """
    container = client.containers.create(
        image,
        [f"--max-connections={MAX_CONNECTIONS}"],
        environment={
            "MYSQL_ROOT_PASSWORD": ROOT_PASSWORD,
            "MYSQL_DATABASE": "mysite",
            "MYSQL_USER": "mysite",
            "MYSQL_PASSWORD": APP_PASSWORD,
        },
        network=network_name,
        networking_config={network_name: client.api.create_endpoint_config(aliases=["db"])},
        ports={"3306/tcp": ("127.0.0.1", None)},
        healthcheck={"test": ["NONE"]},
        labels=LABELS,
    )
    try:
        container.start()
        wait_for_log(container, b"ready for connections", count=2, within=90)
        yield Database(container, published_port(container, "3306/tcp"))
    finally:
        remove(container)


def migrate(client: docker.DockerClient, image: str, network_name: str) -> None:
    """Run the image's ``migrate`` command once, in a one-shot container."""
    container = client.containers.create(
        image, ["migrate"], environment=app_environment(), network=network_name, labels=LABELS
    )
    try:
        container.start()
        code = container.wait(timeout=120)["StatusCode"]
        output = logs_tail(container)
    finally:
        remove(container)
    assert 0 == code, output


@contextlib.contextmanager
def app(
    client: docker.DockerClient,
    image: str,
    network_name: str,
    environment: dict[str, str | None] | None = None,
    **options: Any,
) -> Iterator[App]:
    """The app serving on one CPU, once /healthz answers 200 (within 60 s).

    ``environment`` changes app_environment(); a None value removes that variable.
    """
    merged = {**app_environment(), **(environment or {})}
    container = client.containers.create(
        image,
        environment={name: text for name, text in merged.items() if text is not None},
        network=network_name,
        ports={"8000/tcp": ("127.0.0.1", None)},
        nano_cpus=ONE_CPU,
        labels=LABELS,
        **options,
    )
    try:
        container.start()
        port = published_port(container, "8000/tcp")
        health = wait_for_status(port, "/healthz", 200, within=60, container=container)
        assert 200 == health, logs_tail(container)
        address = container.attrs["NetworkSettings"]["Networks"][network_name]["IPAddress"]
        yield App(container, port, address, plan_of(container))
    finally:
        remove(container)


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def runtime_network(docker_client: docker.DockerClient) -> Iterator[str]:
    """The module's network."""
    with network(docker_client) as name:
        yield name


@pytest.fixture(scope="module")
def shared_database(
    docker_client: docker.DockerClient,
    mysql_server_image: str,
    mysite_image: Built,
    runtime_network: str,
) -> Iterator[Database]:
    """The module's server, migrated once by the image's ``migrate`` command."""
    with database(docker_client, mysql_server_image, runtime_network) as db:
        migrate(docker_client, mysite_image.tag, runtime_network)
        yield db


@pytest.fixture(scope="class")
def shared_app(
    docker_client: docker.DockerClient,
    mysite_image: Built,
    runtime_network: str,
    shared_database: Database,
) -> Iterator[App]:
    """One app for the tests of a class; removed when the class is done."""
    with app(docker_client, mysite_image.tag, runtime_network) as running:
        yield running


# ----------------------------------------------------------------------------------- tests


class TestSizedByThePlan:
    """One app container, sized by the plan it logged, under normal and excessive load."""

    def test_worker_processes_match_the_plan(self, shared_app: App) -> None:
        """PID 1 (gunicorn's master) has exactly as many worker children as the plan's workers."""
        deadline = time.monotonic() + 10  # workers fork within moments of the first answer
        workers = worker_processes(shared_app.container)
        while len(workers) != shared_app.plan["workers"] and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = worker_processes(shared_app.container)

        assert shared_app.plan["workers"] == len(workers), workers

    def test_overload_stays_inside_the_connection_budget(
        self, shared_app: App, shared_database: Database
    ) -> None:
        """5x more clients than threads for 10 s: every one gets 200, and no more connections.

        The server never sees more connections from the app than the plan's peak, and the
        peak is within the budget.
        """
        plan = shared_app.plan
        concurrency = 5 * plan["workers"] * plan["threads"]
        with shared_database.root() as monitor, monitor.cursor() as cursor:
            cursor.execute("FLUSH STATUS")  # Max_used_connections restarts from what is open now
            result = Load(
                shared_app.port, "/db/sleep/?seconds=0.05", concurrency=concurrency, duration=10
            ).run()
            cursor.execute("SHOW GLOBAL STATUS LIKE 'Max_used_connections'")
            (_, max_used) = cursor.fetchone()
        used_by_app = int(max_used) - MONITOR_CONNECTIONS
        numbers = f"{result.summary()}; max_used={max_used}; plan={plan}"

        assert {200: result.total} == result.statuses, numbers
        assert 0 == result.failed, numbers
        assert result.ok >= concurrency, numbers  # every client was answered, repeatedly
        assert used_by_app <= plan["peak_connections"] <= plan["budget"], numbers


def test_stop_during_load_answers_every_request_it_accepted(
    docker_client: docker.DockerClient,
    mysite_image: Built,
    runtime_network: str,
    shared_database: Database,
) -> None:
    """`docker stop` (SIGTERM, 70 s) under load: each request sent gets a complete response.

    Clients hold 1 s requests, twice as many as the app has threads, so requests are both
    running and queued when SIGTERM lands. After the stop, connections may be refused (or
    find no host), which is counted apart; a reset or an empty reply after sending is lost.
    The clients talk to the container's own address: through the published port, the
    engine's userland proxy would accept connections that the app has stopped accepting
    and then drop them, which would look like lost requests that the app never saw.
    """
    with app(docker_client, mysite_image.tag, runtime_network) as running:
        plan = running.plan
        load = Load(
            8000,
            "/db/sleep/?seconds=1",
            host=running.address,
            host_header="localhost",
            concurrency=min(300, 2 * plan["workers"] * plan["threads"]),
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
        running.container.reload()
        state = running.container.attrs["State"]
    in_flight = [s for s in result.samples if s.started < stop_at < s.finished and s.status]
    lost_after = sum(1 for s in result.lost_samples if s.started >= stop_at)
    numbers = (
        f"{result.summary()}; not sent={result.not_sent}; stop took {stopped_in:.1f}s; "
        f"lost that started before/after the stop: {result.lost - lost_after}/{lost_after}"
    )

    assert [] == lost_lines(result.lost_samples, stop_at), numbers
    assert {200} == set(result.statuses), numbers
    assert in_flight, numbers  # SIGTERM really landed on requests in flight
    assert (0, False) == (state["ExitCode"], state["OOMKilled"]), numbers


def test_read_only_root_filesystem_serves_pages(
    docker_client: docker.DockerClient,
    mysite_image: Built,
    runtime_network: str,
    shared_database: Database,
) -> None:
    """With read_only=True and only /tmp as tmpfs, the app starts and /hits/ answers 200."""
    with app(
        docker_client, mysite_image.tag, runtime_network, read_only=True, tmpfs={"/tmp": ""}
    ) as running:
        status, body = get(running.port, "/hits/")
        running.container.reload()
        read_only = running.container.attrs["HostConfig"]["ReadonlyRootfs"]
        output = logs_tail(running.container)

    assert (True, 200) == (read_only, status), f"{body[:500]!r}\n{output}"
    assert json.loads(body)["hits"] >= 1


def test_unset_max_connections_is_asked_from_the_server(
    docker_client: docker.DockerClient,
    mysite_image: Built,
    runtime_network: str,
    shared_database: Database,
) -> None:
    """Without DATABASE_MAX_CONNECTIONS the plan takes the server's @@max_connections."""
    with app(
        docker_client,
        mysite_image.tag,
        runtime_network,
        environment={"DATABASE_MAX_CONNECTIONS": None},
    ) as running:
        plan = running.plan

    assert MAX_CONNECTIONS == plan["max_connections"]
    assert "the server's @@max_connections" in plan["reasons"]["max_connections"]
    assert plan["peak_connections"] <= plan["budget"]


def test_health_follows_the_database(
    docker_client: docker.DockerClient, mysite_image: Built, mysql_server_image: str
) -> None:
    """/healthz answers 503 once the server is stopped, and 200 again once it is back.

    This test stops its server, so it has a network, a server and an app of its own.
    """
    with contextlib.ExitStack() as stack:
        name = stack.enter_context(network(docker_client))
        db = stack.enter_context(database(docker_client, mysql_server_image, name))
        running = stack.enter_context(app(docker_client, mysite_image.tag, name))

        db.container.stop(timeout=30)
        down = wait_for_status(running.port, "/healthz", 503, within=30)
        db.container.start()
        up = wait_for_status(running.port, "/healthz", 200, within=60)
        output = logs_tail(running.container)

    assert (503, 200) == (down, up), output
