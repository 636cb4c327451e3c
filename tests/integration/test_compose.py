"""compose.yaml with the shipped env files: the stack comes up, sized and wired as they say.

Each stack runs under its own project name (``-p kitbuild-test-<hex>``) from a copy of
deploy/staging.env or deploy/production.env in a temporary directory. The copy changes only
what a test machine needs: the images under test, secrets made by deploy/make-secrets, and
free loopback ports. Every stack is removed with ``down -v --remove-orphans``, also when a
test fails. The staging stack and the production stack (three web replicas behind the
proxy) each serve the tests of the module that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from builder import cli
from builder.engine import Container, DockerGateway
from builder.image.service_images import NGINX
from builder.verify.load import Load
from builder.verify.server import ServerSession
from kitbuild_runtime import events
from kitbuild_runtime.events import PlanRecord
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

ROOT = Path(__file__).parent.parent.parent
COMPOSE_FILE = ROOT / "compose.yaml"
DEPLOY = ROOT / "deploy"
#: The Max_used_connections query's own session, which the server counts.
MONITOR_CONNECTIONS = 1
#: The db service's healthcheck logs in every 5 s for a few milliseconds: at most one at once.
HEALTHCHECK_CONNECTIONS = 1
#: The variable the tests misspell on purpose, and the name the warning should suggest.
TYPO, MEANT = "GUNICORN_TIMOUT", "GUNICORN_TIMEOUT"


def compose_command() -> list[str]:
    """docker-compose (1.29) when installed, else the v2 plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither docker-compose nor `docker compose` is installed")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes, str]:
    """GET 127.0.0.1:port/path; the status, the body and the Content-Type."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        connection.close()


def env_file(source: Path, target: Path, overrides: Mapping[str, str]) -> Path:
    """Copy an env file, replacing (or adding) the variables in ``overrides``."""
    left = dict(overrides)
    lines = []
    for line in source.read_text().splitlines():
        name = line.split("=", 1)[0] if "=" in line and not line.startswith("#") else None
        lines.append(f"{name}={left.pop(name)}" if name in left else line)
    lines += [f"{name}={text}" for name, text in left.items()]
    target.write_text("\n".join(lines) + "\n")
    return target


def cli_plan(tmp_path: Path, cpus: str, max_connections: str, replicas: str) -> dict[str, Any]:
    """`kitbuild plan --json` for these inputs, with no cgroup limits read from this host."""
    out = io.StringIO()
    argv = ["plan", "--cpus", cpus, "--max-connections", max_connections]
    argv += ["--replicas", replicas, "--cgroup-root", str(tmp_path), "--json"]
    assert 0 == cli.main(argv, env={}, stdout=out)
    plan: dict[str, Any] = json.loads(out.getvalue())
    return plan


def numbers(plan: Mapping[str, Any]) -> dict[str, Any]:
    """A plan without its reasons (they say where each input came from, which differs)."""
    return {key: value for key, value in plan.items() if key not in {"reasons", "memory"}}


@dataclasses.dataclass
class Stack:
    """A compose project brought up from one env file."""

    project: str
    env: Path
    values: dict[str, str]
    secrets_dir: Path
    gateway: DockerGateway

    def compose(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a compose command on this project and env file."""
        argv = [*compose_command(), "-f", str(COMPOSE_FILE), "-p", self.project]
        result = subprocess.run(
            [*argv, "--env-file", str(self.env), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"compose {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def containers(self, service: str) -> list[Container]:
        """A service's containers, stopped ones included."""
        return [self.gateway.container(i) for i in self.compose("ps", "-q", service).stdout.split()]

    def events(self, container: Container, event: str) -> list[dict[str, Any]]:
        """The JSON lines of one event kind a container printed on stdout."""
        return events.read(container.logs(stderr=False), event)

    def plan(self, container: Container) -> PlanRecord:
        """The plan a web container logged."""
        record = events.find_plan(container.logs(stderr=False))
        assert record is not None, container.logs()[-2000:]
        return record

    def root(self) -> ServerSession:
        """A root session on the db container, at its address on the project's network."""
        (db,) = self.containers("db")
        password = (self.secrets_dir / "db_root_password").read_text().strip()
        address = db.address(f"{self.project}_default")
        return ServerSession(address, 3306, user="root", password=password)

    def wait_healthy(self, service: str, count: int, within: float = 150) -> list[Container]:
        """Wait until ``count`` containers of ``service`` report healthy; return them."""
        deadline = time.monotonic() + within
        while True:
            found = self.containers(service)
            states = [container.health() for container in found]
            if len(found) == count and all(state == "healthy" for state in states):
                return found
            if time.monotonic() > deadline:
                logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout
                pytest.fail(f"{service}: {states}, not {count} healthy:\n{logs[-4000:]}")
            time.sleep(1)


@contextlib.contextmanager
def stack(
    gateway: DockerGateway,
    directory: Path,
    source: Path,
    overrides: Mapping[str, str],
    *,
    web_replicas: int,
) -> Iterator[Stack]:
    """Bring a project up from a copy of ``source``; always take it down, volumes included."""
    secrets_dir = directory / "secrets"
    made = subprocess.run(
        ["sh", str(DEPLOY / "make-secrets"), str(secrets_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert 0 == made.returncode, made.stderr
    env = directory / source.name
    values = {
        "DEPLOY_ENV_FILE": str(env),
        "SECRETS_DIR": str(secrets_dir),
        "WEB_ADDRESS": "127.0.0.1",
        "PROXY_ADDRESS": "127.0.0.1",
        **overrides,
    }
    env_file(source, env, values)
    running = Stack(f"kitbuild-test-{secrets.token_hex(4)}", env, values, secrets_dir, gateway)
    try:
        running.compose("up", "-d")
        running.wait_healthy("web", web_replicas)
        yield running
    finally:
        running.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def nginx_image(gateway: DockerGateway) -> str:
    """kitbuild/nginx:latest, made if missing or stale (never pulled)."""
    return NGINX.ensure(gateway)


@pytest.fixture(scope="module")
def images(mysite_image: Built, mysql_server_image: str, nginx_image: str) -> dict[str, str]:
    """The env files' image variables, set to the images under test."""
    return {
        "APP_IMAGE": mysite_image.tag,
        "DB_IMAGE": mysql_server_image,
        "PROXY_IMAGE": nginx_image,
    }


@pytest.fixture(scope="module")
def staging(
    gateway: DockerGateway, tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]
) -> Iterator[Stack]:
    """deploy/staging.env as shipped (60 connections, 1 CPU, 1 replica), plus one typo."""
    overrides = {**images, "WEB_PORT": str(free_port()), TYPO: "30"}
    directory = tmp_path_factory.mktemp("staging")
    with stack(gateway, directory, DEPLOY / "staging.env", overrides, web_replicas=1) as running:
        yield running


@pytest.fixture(scope="module")
def production(
    gateway: DockerGateway, tmp_path_factory: pytest.TempPathFactory, images: dict[str, str]
) -> Iterator[Stack]:
    """deploy/production.env as shipped: 3 replicas at 1.5 CPUs, 200 connections, the proxy."""
    overrides = {**images, "PROXY_PORT": str(free_port())}
    directory = tmp_path_factory.mktemp("production")
    with stack(gateway, directory, DEPLOY / "production.env", overrides, web_replicas=3) as up:
        yield up


# ------------------------------------------------------------------- the file, statically


def test_server_and_app_take_max_connections_from_one_variable(tmp_path: Path) -> None:
    """The server's --max-connections and the app's DATABASE_MAX_CONNECTIONS are one value.

    Also when the shell overrides the env file: compose interpolates both from it.
    """
    env = env_file(DEPLOY / "staging.env", tmp_path / "s.env", {"SECRETS_DIR": str(tmp_path)})
    for shell, expected in (({}, "60"), ({"DATABASE_MAX_CONNECTIONS": "75"}, "75")):
        result = subprocess.run(
            [*compose_command(), "-f", str(COMPOSE_FILE), "--env-file", str(env), "config"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "DEPLOY_ENV_FILE": str(env), **shell},
        )
        assert 0 == result.returncode, result.stderr
        assert f"--max-connections={expected}" in result.stdout
        assert f"DATABASE_MAX_CONNECTIONS: '{expected}'" in result.stdout


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    """--env-file naming no file: compose refuses and names the file it could not find."""
    missing = tmp_path / "nosuch.env"
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "--env-file", str(missing), "config"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 != result.returncode
    assert "env file" in result.stderr.lower(), result.stderr
    assert str(missing) in result.stderr


def test_without_an_env_file_compose_says_what_to_set() -> None:
    """No --env-file at all: compose stops on a required variable, with our message."""
    environment = {
        name: text
        for name, text in os.environ.items()
        if name not in {"DEPLOY_ENV_FILE", "ALLOWED_HOSTS", "SECRETS_DIR"}
    }
    result = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )

    assert 0 != result.returncode
    assert any(
        message in result.stderr
        for message in ("--env-file deploy/ENVIRONMENT.env", "set ALLOWED_HOSTS", "set SECRETS_DIR")
    ), result.stderr


def test_a_port_already_taken_is_reported_by_compose(
    tmp_path: Path, mysite_image: Built, gateway: DockerGateway
) -> None:
    """WEB_PORT in use on 127.0.0.1: `up` fails and says the address is already in use."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        subprocess.run(["sh", str(DEPLOY / "make-secrets"), str(tmp_path / "s")], check=True)
        env = env_file(
            DEPLOY / "staging.env",
            tmp_path / "port.env",
            {
                "DEPLOY_ENV_FILE": str(tmp_path / "port.env"),
                "SECRETS_DIR": str(tmp_path / "s"),
                "APP_IMAGE": mysite_image.tag,
                "WEB_PORT": str(port),
            },
        )
        running = Stack(f"kitbuild-test-{secrets.token_hex(4)}", env, {}, tmp_path / "s", gateway)
        try:
            result = running.compose("up", "-d", "--no-deps", "web", check=False)
        finally:
            running.compose("down", "-v", "--remove-orphans", check=False)

    assert 0 != result.returncode
    assert f"127.0.0.1:{port}" in result.stderr, result.stderr
    assert "already in use" in result.stderr or "already allocated" in result.stderr


# --------------------------------------------------------------------------------- staging


def test_web_answers_a_database_page_on_its_loopback_port(staging: Stack) -> None:
    """Once healthy, web answers /hits/ (a write and a count) with 200 on 127.0.0.1:WEB_PORT."""
    status, body, _ = get(int(staging.values["WEB_PORT"]), "/hits/")

    assert 200 == status, body
    assert json.loads(body)["hits"] >= 1


def test_web_logs_the_plan_its_env_file_asks_for(staging: Stack, tmp_path: Path) -> None:
    """The plan line matches `kitbuild plan --cpus 1 --max-connections 60`, server agreeing.

    The server really runs with max_connections=60, and the app does not warn of a mismatch.
    """
    (web,) = staging.containers("web")
    (record,) = [PlanRecord.from_dict(line) for line in staging.events(web, events.PLAN)]
    plan = record.as_dict()
    expected = cli_plan(tmp_path, "1", "60", "1")

    assert numbers(expected) == {key: plan[key] for key in numbers(expected)}
    assert plan["reasons"]["cpus"].endswith("CPU quota")  # read from the cgroup, not given
    with staging.root() as session:
        assert 60 == session.variable("max_connections")
    assert 60 == record.server_max_connections
    mismatch = [w for w in staging.events(web, events.WARNING) if "server allows" in w["message"]]
    assert [] == mismatch


def test_a_misspelt_variable_in_the_env_file_is_warned_about(staging: Stack) -> None:
    """GUNICORN_TIMOUT in the env file reaches web, which warns and names GUNICORN_TIMEOUT."""
    (web,) = staging.containers("web")
    warnings = [w for w in staging.events(web, events.WARNING) if w.get("variable") == TYPO]

    assert 1 == len(warnings), web.logs()[-2000:]
    assert MEANT == warnings[0]["closest"]


def test_migrate_ran_once_and_finished_before_web_started(staging: Stack) -> None:
    """The one-shot migrate container exited 0 before the web container started."""
    (migrate,) = staging.containers("migrate")
    (web,) = staging.containers("web")
    migrate_state, web_state = migrate.inspect()["State"], web.inspect()["State"]

    assert ("exited", 0) == (migrate_state["Status"], migrate_state["ExitCode"])
    assert migrate_state["FinishedAt"] < web_state["StartedAt"]


def test_web_runs_read_only_limited_restarted_and_rotated_with_file_secrets(
    staging: Stack,
) -> None:
    """web: read-only root with a /tmp tmpfs, 1 CPU, unless-stopped, 70 s stop, 20 MB x 20 logs.

    Its secrets are files under /run/secrets named by *_FILE variables: no password or key
    is in its environment.
    """
    (web,) = staging.containers("web")
    config = web.inspect()
    host, env = config["HostConfig"], config["Config"]["Env"]
    secret_values = [p.read_text().strip() for p in staging.secrets_dir.iterdir()]

    assert host["ReadonlyRootfs"] is True
    assert "/tmp" in host["Tmpfs"]
    assert 1_000_000_000 == host["NanoCpus"]
    assert "unless-stopped" == host["RestartPolicy"]["Name"]
    assert 70 == config["Config"]["StopTimeout"]
    assert {"max-size": "20m", "max-file": "20"} == host["LogConfig"]["Config"]
    assert "DATABASE_PASSWORD_FILE=/run/secrets/db_password" in env
    assert "SECRET_KEY_FILE=/run/secrets/secret_key" in env
    assert not [v for v in secret_values if any(v in line for line in env)]


# ------------------------------------------------------------------------------ production


def test_the_proxy_serves_static_files_and_spreads_pages_over_the_replicas(
    production: Stack,
) -> None:
    """Through the proxy: /static/ comes from the volume, and /hits/ reaches all 3 replicas.

    nginx resolves `web` again every 10 s, so a replica that joined the network just after
    its last lookup gets requests within that time: the test asks for up to 30 s.
    """
    port = int(production.values["PROXY_PORT"])
    status, body, content_type = get(port, "/static/admin/css/base.css")
    (proxy,) = production.containers("proxy")
    pages: list[int] = []
    upstreams: set[str] = set()
    deadline = time.monotonic() + 30
    while len(upstreams) < 3 and time.monotonic() < deadline:
        pages += [get(port, "/hits/")[0] for _ in range(12)]
        upstreams = {
            line.split("upstream=", 1)[1].split()[0]
            for line in proxy.logs(stderr=False).splitlines()
            if '"GET /hits/' in line and "upstream=" in line
        }
        time.sleep(1)

    assert (200, "text/css") == (status, content_type.split(";")[0]), body[:200]
    assert {200} == set(pages), pages
    assert 3 == len(upstreams), upstreams


def test_two_env_files_give_two_plans(staging: Stack, production: Stack, tmp_path: Path) -> None:
    """staging.env and production.env give the plans `kitbuild plan` computes for each.

    Staging: 1 CPU, 60 connections, 1 replica. Production: 1.5 CPUs, 200 connections,
    3 replicas, every replica with the same plan.
    """
    staging_plans = [staging.plan(c).as_dict() for c in staging.containers("web")]
    production_plans = [production.plan(c).as_dict() for c in production.containers("web")]
    expected_staging = numbers(cli_plan(tmp_path, "1", "60", "1"))
    expected_production = numbers(cli_plan(tmp_path, "1.5", "200", "3"))

    assert expected_staging != expected_production
    assert [expected_staging] == [{k: p[k] for k in expected_staging} for p in staging_plans]
    assert [expected_production] * 3 == [
        {k: p[k] for k in expected_production} for p in production_plans
    ]


def test_three_replicas_under_overload_stay_within_the_budget(production: Stack) -> None:
    """2x more clients than all replicas' threads, for 10 s through the proxy: all 200.

    The server's Max_used_connections, less this test's own session and the db healthcheck's
    (each is counted while it lasts), never exceeds the budget; the plan's peak over all
    replicas is within it too, and no connection was refused for lack of room.
    """
    plan = production.plan(production.containers("web")[0]).plan
    concurrency = min(400, 2 * plan.workers * plan.threads * plan.containers)
    with production.root() as session:
        session.reset_high_water_mark()
        result = Load(
            int(production.values["PROXY_PORT"]),
            "/db/sleep/?seconds=0.05",
            concurrency=concurrency,
            duration=10,
        ).run()
        max_used = session.status("Max_used_connections")
        refused = session.status("Connection_errors_max_connections")
    report = f"{result.summary()}; max_used={max_used}; refused={refused}; plan={plan}"
    print(report)  # the figures, for `pytest -s`

    assert {200: result.total} == result.statuses, report
    assert plan.peak_connections_all <= plan.budget, report
    assert max_used - MONITOR_CONNECTIONS - HEALTHCHECK_CONNECTIONS <= plan.budget, report
    assert max_used <= plan.max_connections, report
    assert 0 == refused, report
