"""`kitbuild deploy swarm` on a real one-node swarm: sized, ordered and rolled within the budget.

One stack serves the module, deployed with `docker stack deploy` from a stack file that
`kitbuild deploy swarm` rendered from a copy of deploy/production.env: 3 web replicas of
0.5 CPU (this machine has 2), a surge of 1, a server at 40 connections, the proxy published
in host mode on a free port. Load goes to that port on 127.0.0.1; the server's counters are
read by one root session at the server task's address on docker_gwbridge. The tests run in
file order: up, overload, rolling update under load, scale past the plan. The stack, its
secrets, network and volumes are removed afterwards, also when a test fails. The node stays
in swarm mode: leaving breaks bridge-network DNS on this engine until dockerd restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder import cli
from builder.deploy import description
from builder.engine import Container, DockerGateway, Service
from builder.image.service_images import NGINX
from builder.verify.load import Load, LoadResult
from builder.verify.server import ServerSession
from kitbuild_runtime import events
from tests.integration.conftest import Built
from tests.integration.test_compose import env_file, free_port

pytestmark = [pytest.mark.docker, pytest.mark.swarm]

ROOT = Path(__file__).parent.parent.parent
DEPLOY = ROOT / "deploy"
REPLICAS, SURGE, MAX_CONNECTIONS = 3, 1, 40
#: The test's root session, which the server counts in Max_used_connections.
MONITOR_CONNECTIONS = 1
#: The db service's healthcheck logs in (as the app's user) every 5 s: at most one at once.
HEALTHCHECK_CONNECTIONS = 1
#: Sessions the server shows from itself (the db healthcheck), not from a web task.
SERVER_LOCAL = {"127.0.0.1", "localhost"}
#: Load: at least 5 clients per thread of the whole stack, for at least 15 s.
LOAD_FACTOR, LOAD_SECONDS = 5, 20.0
LOAD_PATH = "/db/sleep/?seconds=0.05"
#: Beside it during the rollout: slow requests, so a stopping task takes seconds to drain,
#: as a real site's slow pages make it. Without the update delay this showed 5 tasks
#: holding sessions at once (a replaced one still draining when the next one started).
SLOW_PATH, SLOW_CLIENTS = "/db/sleep/?seconds=5", 12


def engine_time(text: str) -> datetime.datetime:
    """An engine timestamp (RFC 3339, nanoseconds) as an aware datetime, to the microsecond."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    assert match, text
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat(f"{match.group(1)}.{fraction}+00:00")


@dataclasses.dataclass
class SwarmStack:
    """A stack rendered by `kitbuild deploy swarm` and deployed with `docker stack deploy`."""

    name: str
    env: Path
    stack_file: Path
    secrets_dir: Path
    gateway: DockerGateway
    deploys: int = 0

    def render(self, **changes: str) -> description.Deployment:
        """Change the env file, render the stack file with the CLI; the deployment it describes."""
        env_file(self.env, self.env, changes)
        err = io.StringIO()
        argv = ["deploy", "swarm", "--env-file", str(self.env), "-o", str(self.stack_file)]
        assert 0 == cli.main(argv, stdout=io.StringIO(), stderr=err), err.getvalue()
        return description.load(self.env)

    def deploy(self) -> None:
        """`docker stack deploy` the stack file."""
        self.gateway.stack_deploy(self.stack_file, self.name)
        self.deploys += 1

    def service(self, short: str) -> Service:
        """One of the stack's services."""
        return self.gateway.service(f"{self.name}_{short}")

    def web(self) -> list[Container]:
        """The running web containers."""
        return self.service("web").containers()

    def wait_for_web(self, count: int, image: str, within: float) -> list[Container]:
        """Wait until ``count`` web tasks of ``image`` run healthy and no update is under way."""
        deadline = time.monotonic() + within
        web = self.service("web")
        while True:
            tasks = [t for t in web.tasks() if t.state == "running"]
            healthy = [c for c in web.containers() if c.health() == "healthy"]
            settled = web.update_state() in {None, "completed"}
            if (
                len(tasks) == count
                and {image} == {t.image for t in tasks}
                and len(healthy) == count
                and settled
            ):
                return healthy
            if time.monotonic() > deadline:
                states = [(t.slot, t.state, t.desired, t.image, t.error) for t in web.tasks()]
                pytest.fail(f"web is not {count} x {image} healthy after {within} s: {states}")
            time.sleep(2)

    def root(self) -> ServerSession:
        """A root session on the server task, at its address on docker_gwbridge."""
        (db,) = self.service("db").containers()
        password = (self.secrets_dir / "db_root_password").read_text().strip()
        return ServerSession(db.gateway_address(), 3306, user="root", password=password)


def web_sessions(session: ServerSession, user: str) -> dict[str, int]:
    """The app account's sessions by client address, the server's own left out."""
    rows = session.rows(
        "SELECT SUBSTRING_INDEX(HOST, ':', 1), COUNT(*) FROM information_schema.PROCESSLIST "
        "WHERE USER = %s GROUP BY 1",
        user,
    )
    return {str(host): int(count) for host, count in rows if host not in SERVER_LOCAL}


def warnings_of(container: Container) -> list[dict[str, Any]]:
    """The overcommit warnings a web container logged."""
    found = events.read(container.logs(stderr=False), events.WARNING)
    return [w for w in found if "open_sessions" in w]


def load(port: int, threads: int, duration: float) -> Load:
    """LOAD_FACTOR clients per thread of the stack, at the proxy on 127.0.0.1."""
    return Load(port, LOAD_PATH, concurrency=LOAD_FACTOR * threads, duration=duration)


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def swarm_node(gateway: DockerGateway) -> DockerGateway:
    """The engine, as a one-node swarm (made one if it is not; never left)."""
    gateway.ensure_swarm()
    return gateway


@pytest.fixture(scope="module")
def nginx_image(gateway: DockerGateway) -> str:
    """kitbuild/nginx:latest, made if missing or stale (never pulled)."""
    return NGINX.ensure(gateway)


@pytest.fixture(scope="module")
def rollout_image(gateway: DockerGateway, mysite_image: Built) -> Iterator[str]:
    """The same image under a new tag: what a rollout of a new build deploys."""
    tag = f"{mysite_image.tag.rpartition(':')[0]}:rollout-{secrets.token_hex(3)}"
    gateway.tag_image(mysite_image.tag, tag)
    yield tag
    gateway.remove_image(tag)


@pytest.fixture(scope="module")
def stack(
    swarm_node: DockerGateway,
    tmp_path_factory: pytest.TempPathFactory,
    mysite_image: Built,
    mysql_server_image: str,
    nginx_image: str,
) -> Iterator[SwarmStack]:
    """The module's stack, up with every web replica healthy; removed whole afterwards."""
    directory = tmp_path_factory.mktemp("swarm")
    secrets_dir = directory / "secrets"
    subprocess.run(["sh", str(DEPLOY / "make-secrets"), str(secrets_dir)], check=True, stdout=-3)
    name = f"kbtest-{secrets.token_hex(4)}"
    env = env_file(
        DEPLOY / "production.env",
        directory / "swarm.env",
        {
            "COMPOSE_PROJECT_NAME": name,
            "APP_IMAGE": mysite_image.tag,
            "DB_IMAGE": mysql_server_image,
            "PROXY_IMAGE": nginx_image,
            "SECRETS_DIR": str(secrets_dir),
            "WEB_CPUS": "0.5",
            "KIT_REPLICAS": str(REPLICAS),
            "KIT_MAX_SURGE": str(SURGE),
            "DATABASE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "PROXY_PORT": str(free_port()),
            # Shorter than production's 60/70 s so a rollout of 3 fits in about 2 minutes.
            "GUNICORN_GRACEFUL_TIMEOUT": "10",
            "WEB_STOP_GRACE_PERIOD": "15s",
        },
    )
    running = SwarmStack(name, env, directory / "stack.yaml", secrets_dir, swarm_node)
    try:
        running.render()
        running.deploy()
        running.wait_for_web(REPLICAS, mysite_image.tag, within=240)
        yield running
    finally:
        swarm_node.stack_remove(name)


# ----------------------------------------------------------------------------------- tests


def test_every_replica_is_healthy_with_the_plan_of_the_env_file(stack: SwarmStack) -> None:
    """3 healthy replicas, each serving with the plan the deployment computed: 2 x 4, 4 x 8 <= 37.

    The server runs with the env file's max_connections, and no replica warned of overcommit.
    """
    deployment = description.load(stack.env)
    web = stack.web()
    plans = [events.find_plan(c.logs(stderr=False)) for c in web]

    assert [deployment.plan.as_dict()] * REPLICAS == [
        {**p.plan.as_dict(), "reasons": deployment.plan.reasons} for p in plans if p
    ]
    assert (2, 4, 4, 32, 37) == (
        deployment.plan.workers,
        deployment.plan.threads,
        deployment.plan.containers,
        deployment.plan.peak_connections_all,
        deployment.plan.budget,
    )
    with stack.root() as session:
        assert MAX_CONNECTIONS == session.variable("max_connections")
    assert [[]] * REPLICAS == [warnings_of(c) for c in web]


def test_migrations_ran_once_and_no_replica_served_before(stack: SwarmStack) -> None:
    """One migrate task per deploy, each migration applied once, no replica served before.

    Every replica logged its plan (and so started gunicorn) after the last migration was
    recorded in django_migrations.
    """
    migrate = stack.service("migrate")
    done = [t for t in migrate.tasks() if t.state == "complete"]
    (job,) = migrate.containers(state="complete")
    applied = re.findall(r"Applying (\S+)\.\.\. OK", job.logs())
    with stack.root() as session:
        rows = session.rows("SELECT app, name, applied FROM mysite.django_migrations")
    last = max(row[2] for row in rows).replace(tzinfo=datetime.UTC)
    started = []
    for container in stack.web():
        lines = container.logs(stderr=False, timestamps=True).splitlines()
        (plan_line,) = [line for line in lines if f'"event":"{events.PLAN}"' in line]
        started.append(engine_time(plan_line.split(" ", 1)[0]))
    waited = [bool(events.read(c.logs(stderr=False), events.MIGRATIONS)) for c in stack.web()]
    print(f"migrations: {len(applied)} applied; replicas that waited for them: {waited}")

    assert 1 == stack.deploys == len(done)
    assert len(rows) == len(applied) == len(set(applied)) > 0
    assert all(last < moment for moment in started), (last, started)


def test_overload_through_the_published_port_stays_within_the_budget(stack: SwarmStack) -> None:
    """5 clients per thread for 20 s through the proxy's host-mode port: every request 200.

    The server's Max_used_connections, less this test's session and the db healthcheck's,
    stays within the budget, and no connection was refused for lack of room.
    """
    plan = description.load(stack.env).plan
    threads = plan.workers * plan.threads * REPLICAS
    port = int(description.read_env_file(stack.env)["PROXY_PORT"])
    with stack.root() as session:
        session.reset_high_water_mark()
        result = load(port, threads, LOAD_SECONDS).run()
        max_used = session.status("Max_used_connections")
        refused = session.status("Connection_errors_max_connections")
    report = (
        f"{result.summary()}; {result.total / result.seconds:.0f} req/s; max_used={max_used}; "
        f"budget={plan.budget}; refused={refused}"
    )
    print(report)

    assert LOAD_FACTOR * threads == result.concurrency
    assert {200: result.total} == result.statuses, report
    assert max_used - MONITOR_CONNECTIONS - HEALTHCHECK_CONNECTIONS <= plan.budget, report
    assert 0 == refused, report


class Sampler:
    """Samples the app account's sessions per client address, every 0.2 s, on one session."""

    def __init__(self, session: ServerSession, user: str) -> None:
        """Sample on ``session`` (used by the sampling thread only) until :meth:`stop`."""
        self._session, self._user = session, user
        self._stop = threading.Event()
        self.samples: list[dict[str, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(web_sessions(self._session, self._user))
            self._stop.wait(0.2)

    @property
    def overlap(self) -> int:
        """The most web tasks that held sessions at one moment."""
        return max((len(sample) for sample in self.samples), default=0)

    @property
    def peak(self) -> int:
        """The most sessions the web tasks held at one moment."""
        return max((sum(sample.values()) for sample in self.samples), default=0)


def test_a_rolling_update_under_load_stays_within_the_budget(
    stack: SwarmStack, rollout_image: str
) -> None:
    """A new image deployed while 5 clients per thread (and 12 slow ones) load the proxy.

    Every request gets 200; Max_used_connections (less the monitor and the db healthcheck)
    stays within the budget; at most KIT_REPLICAS + KIT_MAX_SURGE web tasks ever hold
    sessions at once; every task ends on the new image; migrate ran once more (once per
    deploy); and no new replica warned of overcommit.
    """
    deployment = stack.render(APP_IMAGE=rollout_image)
    plan = deployment.plan
    threads = plan.workers * plan.threads * REPLICAS
    port = int(description.read_env_file(stack.env)["PROXY_PORT"])
    with stack.root() as session:
        session.reset_high_water_mark()
        with Sampler(session, deployment.database.user) as sampler:
            running = load(port, threads, 420).start()
            slow = Load(port, SLOW_PATH, concurrency=SLOW_CLIENTS, duration=420, timeout=60)
            slow.start()
            time.sleep(5)
            started = time.monotonic()
            stack.deploy()
            try:
                stack.wait_for_web(REPLICAS, rollout_image, within=400)
            finally:
                rolled = time.monotonic() - started
                time.sleep(5)
                running.stop()
                slow.stop()
                result: LoadResult = running.join()
                slow_result = slow.join()
        max_used = session.status("Max_used_connections")
    web = stack.web()
    report = (
        f"{result.summary()}; {result.total / result.seconds:.0f} req/s; slow: "
        f"{slow_result.summary()}; rollout {rolled:.0f} s; max_used={max_used}; "
        f"sampled peak={sampler.peak} sessions on {sampler.overlap} tasks; budget={plan.budget}"
    )
    print(report)

    assert {200: result.total} == result.statuses, report
    assert {200: slow_result.total} == slow_result.statuses, report
    assert max_used - MONITOR_CONNECTIONS - HEALTHCHECK_CONNECTIONS <= plan.budget, report
    assert sampler.overlap <= REPLICAS + SURGE, report
    assert [rollout_image] * REPLICAS == [c.inspect()["Config"]["Image"] for c in web]
    assert (
        2
        == stack.deploys
        == len([t for t in stack.service("migrate").tasks() if t.state == "complete"])
    )
    assert [[]] * REPLICAS == [warnings_of(c) for c in web]


#: Replicas the scale test ends with: one more than KIT_REPLICAS + KIT_MAX_SURGE + 1.
SCALED = 6


def test_scaling_past_the_plan_warns_naming_the_numbers(stack: SwarmStack) -> None:
    """`docker service scale web=5`, then `web=6`, with KIT_REPLICAS=3: the sixth warns.

    A healthy replica holds at least its healthcheck's session, so the sixth sees five
    other clients, more than the 3 + 1 containers planned. Its warning carries the open
    sessions and clients it saw, its own peak (8), the budget (37), and the replicas (3)
    and surge (1) the plan was made for. (Replicas started in the same second see each
    other only while each holds its one session before its check: a best effort, which
    two CI runs of a one-step scale showed is not reliable, so it is not asserted. Six
    rather than ten replicas: on two CPUs, ten starting together failed health checks and
    Swarm replaced some, which then started beside fewer than the test counted on.)
    """
    web = stack.service("web")
    deadline = time.monotonic() + 300

    def wait_for(count: int) -> list[Container]:
        # Every task running, every container healthy (so it has answered /healthz, which
        # reads the database) and every plan line logged (the check's warning comes first).
        while True:
            running = [t for t in web.tasks() if t.state == "running"]
            containers = web.containers()
            if (
                len(running) == count == len(containers)
                and all(c.health() == "healthy" for c in containers)
                and all(events.find_plan(c.logs(stderr=False)) for c in containers)
            ):
                return containers
            assert time.monotonic() < deadline, [(t.slot, t.state, t.error) for t in web.tasks()]
            time.sleep(2)

    user = description.load(stack.env).database.user
    try:
        web.scale(SCALED - 1)
        before = {c.id for c in wait_for(SCALED - 1)}
        # What the last replica's check will read: the app account's sessions, by client address.
        with stack.root() as session:
            seen_before = web_sessions(session, user)
        web.scale(SCALED)
        # The last one, and any replica Swarm replaced meanwhile (a health check that timed
        # out on this busy machine): the last started beside five healthy ones.
        newcomers = [c for c in wait_for(SCALED) if c.id not in before]
        found = [warnings_of(c) for c in newcomers]
        print(f"{len(newcomers)} new replicas; their warnings: {found}; before: {seen_before}")
    finally:
        with contextlib.suppress(Exception):
            web.scale(REPLICAS)

    assert newcomers
    # A replica Swarm replaced may start while another restarts (fewer than five beside
    # it) and rightly not warn; the sixth always starts beside five, so one warning at least.
    assert any(found), (found, seen_before, [c.logs()[-1500:] for c in newcomers])
    for (warning,) in [warnings for warnings in found if warnings]:
        assert (8, 37, 3, 1) == (
            warning["peak_connections"],
            warning["budget"],
            warning["replicas"],
            warning["surge"],
        )
        # Each warned for a reason it names: more clients than planned, or too many sessions.
        assert warning["clients"] > REPLICAS + SURGE or warning["projected"] > warning["budget"], (
            warning
        )
        assert "KIT_REPLICAS=3 + KIT_MAX_SURGE=1 = 4 containers of 8" in warning["message"]
