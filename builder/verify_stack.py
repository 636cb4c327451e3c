"""The containers `kitbuild verify` runs, through testcontainers: a network, the server, the app.

Every container and the network carry the label ``io.kitbuild.verify=<run id>``, and
:meth:`VerifyStack.close` removes what it started and then sweeps that label through the
gateway, so nothing is left behind: not on failure, not on Ctrl-C, not when a start was
interrupted half-way. testcontainers' reaper (Ryuk) is turned off: it is an image that
would have to be pulled, and the sweep does its job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import time
from typing import TYPE_CHECKING, Any

from testcontainers.community.mysql import MySqlContainer
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from builder.docker_gateway import DockerGateway

#: The label every container and network of one verify run carries.
RUN_LABEL = "io.kitbuild.verify"

#: The server's name on the run's network, as the app's DATABASE_HOST.
DATABASE_ALIAS = "db"

APP_PORT = 8000
#: Starts tried when the engine picks a host port that is still taken.
PORT_ATTEMPTS = 3
SERVER_PORT = 3306


class VerifyError(KitError):
    """A verify run cannot go on; the message says what failed and what to do."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """The accounts the run's server is started with."""

    root_password: str
    user: str
    password: str
    database: str


@dataclasses.dataclass(frozen=True)
class RunningApp:
    """A serving app: its published port and the plan its entrypoint logged."""

    port: int
    plan: dict[str, Any]


class VerifyStack:
    """Start the run's containers one by one; :meth:`close` removes them all."""

    def __init__(self, gateway: DockerGateway, run_id: str) -> None:
        """Nothing starts until a ``start_*`` method is called."""
        self._gateway = gateway
        self._labels = {RUN_LABEL: run_id}
        self._network: Network | None = None
        self._containers: list[DockerContainer] = []
        self.database: MySqlContainer | None = None
        self.app: DockerContainer | None = None
        testcontainers_config.ryuk_disabled = True

    @property
    def labels(self) -> dict[str, str]:
        """The run's label, as a filter for `docker ps` and the tests."""
        return dict(self._labels)

    # ------------------------------------------------------------------------ stages

    def start_network(self) -> None:
        """A user-defined bridge network, so the app reaches the server by its alias."""
        network = Network(docker_network_kw={"labels": self._labels})
        _guard("creating the run's network", network.create)
        self._network = network

    def start_database(self, image: str, max_connections: int, credentials: Credentials) -> int:
        """Start the server at ``max_connections``; return its published port once it is ready.

        testcontainers' own MySqlContainer does the start and the wait (the server's "ready
        for connections" line twice: the init server's, then the real one's).
        """
        container = (
            MySqlContainer(
                image,
                username=credentials.user,
                password=credentials.password,
                root_password=credentials.root_password,
                dbname=credentials.database,
            )
            .with_command(f"--max-connections={max_connections}")
            .with_network(self._require_network())
            .with_network_aliases(DATABASE_ALIAS)
            # The image's own health check logs in every few seconds; off, so that the
            # server's high-water mark counts only the app and verify's monitor.
            .with_kwargs(labels=self._labels, healthcheck={"test": ["NONE"]})
        )
        self._containers.append(container)
        self.database = container
        self._start(container, f"starting {image}")
        return int(_guard("reading the server's port", container.get_exposed_port, SERVER_PORT))

    def run_migrate(self, image: str, environment: Mapping[str, str], *, timeout: float) -> None:
        """Run the image's ``migrate`` command once; fail with its last line if it fails."""
        container = self._app_container(image, environment).with_command("migrate")
        self._containers.append(container)
        _guard("starting the migrate container", container.start)
        wrapped = container.get_wrapped_container()
        try:
            status = wrapped.wait(timeout=timeout)
        except Exception as error:  # the SDK's timeout surfaces as a requests/urllib3 error
            raise VerifyError(
                f"`migrate` did not finish within {timeout:.0f} s ({_one_line(error)})"
            ) from None
        if int(status.get("StatusCode", 1)) != 0:
            raise VerifyError(
                f"`migrate` in {image} failed: {_last_line(wrapped.logs())}; "
                "run `docker run IMAGE migrate` with the same environment to see all of it"
            )

    def start_app(
        self, image: str, environment: Mapping[str, str], *, cpus: float, timeout: float
    ) -> RunningApp:
        """Start the app with a CPU limit; wait until its health endpoint answers 200."""
        container = self._app_container(
            image, environment, nano_cpus=round(cpus * 1e9)
        ).with_exposed_ports(APP_PORT)
        self._containers.append(container)
        self.app = container
        self._start(container, f"starting {image}")
        port = int(_guard("reading the app's port", container.get_exposed_port, APP_PORT))
        health = environment.get("KIT_HEALTH_PATH", "/healthz")
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_status(port, health, timeout=5) == 200:
                    break
            if not self.app_running():
                raise VerifyError(
                    f"{image} exited before it served: {_last_line(self._logs(container))}"
                )
            if time.monotonic() > deadline:
                raise VerifyError(
                    f"{image} did not answer 200 on {health} within {timeout:.0f} s: "
                    f"{_last_line(self._logs(container))}"
                )
            time.sleep(0.5)
        return RunningApp(port, self._plan_line(container))

    def stop_app(self) -> None:
        """Remove the app container, closing its connections (to start another one)."""
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.stop()
            self._containers.remove(self.app)
            self.app = None

    # ----------------------------------------------------------------------- queries

    def app_running(self) -> bool:
        """Whether the app container is still running."""
        if self.app is None:
            return False
        try:
            wrapped = self.app.get_wrapped_container()
            wrapped.reload()
            return bool(wrapped.status == "running")
        except Exception:  # gone, or the engine went away: either way, not running
            return False

    def app_logs(self) -> str:
        """Everything the app printed so far."""
        return "" if self.app is None else self._logs(self.app)

    def restart_database(self) -> int:
        """Restart the server container in place; return its published port (a new one)."""
        if self.database is None:
            raise VerifyError("no database was started")
        self.database.get_wrapped_container().restart(timeout=10)
        return int(self.database.get_exposed_port(SERVER_PORT))

    # ------------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Remove every container (newest first) and the network; then sweep the label."""
        for container in reversed(self._containers):
            with contextlib.suppress(Exception):
                container.stop()
        self._containers.clear()
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
            self._network = None
        self._gateway.remove_labelled(RUN_LABEL, self._labels[RUN_LABEL])

    # ----------------------------------------------------------------------- helpers

    @staticmethod
    def _start(container: DockerContainer, what: str) -> None:
        """Start a container; try again when the engine picked a host port still in use."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                _guard(what, container.start)
                return
            except VerifyError as error:
                # Docker 20.10 picks host ports from the range the kernel gives clients, so
                # a busy host can hand out one a client socket holds; the next one is free.
                taken = ("already allocated", "address already in use")
                if not any(text in str(error) for text in taken) or attempt == PORT_ATTEMPTS:
                    raise
                with contextlib.suppress(Exception):
                    container.get_wrapped_container().remove(force=True, v=True)

    def _require_network(self) -> Network:
        if self._network is None:
            self.start_network()
        assert self._network is not None
        return self._network

    def _app_container(
        self, image: str, environment: Mapping[str, str], **limits: Any
    ) -> DockerContainer:
        return (
            DockerContainer(image)
            .with_envs(**environment)
            .with_network(self._require_network())
            .with_kwargs(labels=self._labels, **limits)
        )

    @staticmethod
    def _logs(container: DockerContainer) -> str:
        try:
            return bytes(container.get_wrapped_container().logs()).decode(errors="replace")
        except Exception:
            return ""

    def _plan_line(self, container: DockerContainer) -> dict[str, Any]:
        for line in self._logs(container).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("event") == "kitbuild.plan":
                        return record
        raise VerifyError(
            "the app served but logged no kitbuild.plan line: was it built by this kitbuild?"
        )


def http_status(port: int, path: str, *, timeout: float) -> int:
    """GET 127.0.0.1:port/path on a fresh connection and return the status code."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _guard(what: str, action: Callable[..., Any], *args: Any) -> Any:
    """Run a testcontainers call; turn any failure into one VerifyError line."""
    try:
        return action(*args)
    except KitError:
        raise
    except Exception as error:
        raise VerifyError(f"{what} failed: {_one_line(error)}") from None


def _one_line(error: object) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    # The engine's messages end with the cause ("... port is already allocated").
    return _shorten(lines[-1]) if lines else type(error).__name__


def _shorten(line: str, limit: int = 300) -> str:
    return line if len(line) <= limit else f"{line[:100]} ... {line[-(limit - 105) :]}"


def _last_line(logs: bytes | str) -> str:
    text = logs.decode(errors="replace") if isinstance(logs, bytes) else logs
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
