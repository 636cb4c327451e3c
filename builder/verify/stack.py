"""The containers a verify run starts: a network, the server, the image's migrate, the app.

Every container and the network carry the label ``io.kitbuild.verify=<run id>``, and
:meth:`VerifyStack.close` removes what it started and then sweeps that label through the
gateway, so nothing is left behind: not on failure, not on Ctrl-C, not when a start was
interrupted half-way. The benchmark and the integration tests start their containers
through this class too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import time
from typing import TYPE_CHECKING

from builder.engine import ContainerSpec
from builder.errors import EngineError, VerifyError
from builder.servers import mysql
from kitbuild_runtime import events
from kitbuild_runtime.environment import MYSQL_PORT, health_path

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from builder.engine import Container, DockerGateway
    from builder.verify.server import Credentials
    from kitbuild_runtime.events import PlanRecord


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """The run's server: its container and its 3306 published on the host."""

    container: Container
    port: int


@dataclasses.dataclass(frozen=True)
class RunningApp:
    """A serving app: its container, its published port, its address and its plan."""

    container: Container
    port: int  # APP_PORT, published on 127.0.0.1
    address: str  # the container's own address on the run's network
    record: PlanRecord


#: The label every container and network of one verify run carries.
RUN_LABEL = "io.kitbuild.verify"

#: The server's name on the run's network, as the app's DATABASE_HOST.
DATABASE_ALIAS = "db"

APP_PORT = 8000
SERVER_PORT = MYSQL_PORT


class VerifyStack:
    """Start the run's containers one by one; :meth:`close` removes them all."""

    def __init__(self, gateway: DockerGateway, run_id: str) -> None:
        """Nothing starts until a ``start_*`` method is called."""
        self._gateway = gateway
        self._labels = {RUN_LABEL: run_id}
        self._network: str | None = None
        self._containers: list[Container] = []
        self.database: RunningServer | None = None
        self.app: RunningApp | None = None  # the newest app started

    @property
    def labels(self) -> dict[str, str]:
        """The run's label, as a filter for `docker ps` and the tests."""
        return dict(self._labels)

    @property
    def network(self) -> str:
        """The run's user-defined bridge network (created on first use)."""
        if self._network is None:
            name = f"kitbuild-verify-{self._labels[RUN_LABEL]}"
            self._network = self._gateway.create_network(name, self._labels)
        return self._network

    # ------------------------------------------------------------------------ stages

    def start_database(
        self, image: str, max_connections: int, credentials: Credentials
    ) -> RunningServer:
        """Start the server at ``max_connections``; return it once it is ready.

        The image's own health check is off: it logs in every few seconds, and the server's
        high-water mark must count only the app and verify's monitor.
        """
        spec = ContainerSpec(
            image,
            labels=self._labels,
            network=self.network,
            aliases=[DATABASE_ALIAS],
            healthcheck=False,
        )
        container = self._guard(
            f"starting {image}",
            lambda: mysql.start(
                self._gateway,
                spec,
                max_connections=max_connections,
                user=credentials.user,
                password=credentials.password,
                root_password=credentials.root_password,
                database=credentials.database,
            ),
        )
        self._containers.append(container)
        self.database = RunningServer(container, container.port(SERVER_PORT))
        return self.database

    def run_migrate(self, image: str, environment: Mapping[str, str], *, timeout: float) -> None:
        """Run the image's ``migrate`` command once; fail with its last line if it fails."""
        spec = self._app_spec(image, environment, command=["migrate"])
        container = self._guard("starting the migrate container", lambda: self._gateway.start(spec))
        self._containers.append(container)
        try:
            code = container.wait(timeout)
        except EngineError as error:
            raise VerifyError(
                f"`migrate` did not finish within {timeout:.0f} s ({error})"
            ) from None
        if code != 0:
            raise VerifyError(
                f"`migrate` in {image} failed: {_last_line(container.logs())}; "
                "run `docker run IMAGE migrate` with the same environment to see all of it"
            )

    def start_app(
        self,
        image: str,
        environment: Mapping[str, str],
        *,
        cpus: float,
        timeout: float,
        read_only: bool = False,
        tmpfs: Mapping[str, str] | None = None,
    ) -> RunningApp:
        """Start the app with a CPU limit; wait until its health endpoint answers 200."""
        spec = dataclasses.replace(
            self._app_spec(image, environment),
            publish=[APP_PORT],
            cpus=cpus,
            read_only=read_only,
            tmpfs=tmpfs or {},
        )
        container = self._guard(f"starting {image}", lambda: self._gateway.start(spec))
        self._containers.append(container)
        port = container.port(APP_PORT)
        health = health_path(environment)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_status(port, health, timeout=5) == 200:
                    break
            if not container.running():
                raise VerifyError(
                    f"{image} exited before it served: {_last_line(container.logs())}"
                )
            if time.monotonic() > deadline:
                raise VerifyError(
                    f"{image} did not answer 200 on {health} within {timeout:.0f} s: "
                    f"{_last_line(container.logs())}"
                )
            time.sleep(0.5)
        record = events.find_plan(container.logs(stdout=True, stderr=False))
        if record is None:
            raise VerifyError(
                "the app served but logged no kitbuild.plan line: was it built by this kitbuild?"
            )
        self.app = RunningApp(container, port, container.address(self.network), record)
        return self.app

    def remove(self, app: RunningApp) -> None:
        """Remove an app container, closing its connections (to start another one)."""
        app.container.remove()
        with contextlib.suppress(ValueError):
            self._containers.remove(app.container)
        if self.app is app:
            self.app = None

    # ----------------------------------------------------------------------- queries

    def server_port(self) -> int:
        """The host port the server answers on."""
        if self.database is None:
            raise VerifyError("no database was started")
        return self.database.port

    def app_running(self) -> bool:
        """Whether the newest app container is still running."""
        return self.app is not None and self.app.container.running()

    def restart_database(self) -> int:
        """Restart the server container in place; return its published port (a new one)."""
        if self.database is None:
            raise VerifyError("no database was started")
        self.database.container.restart(timeout=10)
        self.database = RunningServer(
            self.database.container, self.database.container.port(SERVER_PORT)
        )
        return self.database.port

    # ------------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Remove every container (newest first) and the network; then sweep the label."""
        for container in reversed(self._containers):
            with contextlib.suppress(EngineError):
                container.remove()
        self._containers.clear()
        self._network = None
        self._gateway.remove_labelled(RUN_LABEL, self._labels[RUN_LABEL])

    # ----------------------------------------------------------------------- helpers

    def _app_spec(
        self, image: str, environment: Mapping[str, str], command: list[str] | None = None
    ) -> ContainerSpec:
        return ContainerSpec(
            image,
            command=command,
            environment=dict(environment),
            labels=self._labels,
            network=self.network,
        )

    @staticmethod
    def _guard(what: str, start: Callable[[], Container]) -> Container:
        """Start something; an engine failure stops the run with one VerifyError line."""
        try:
            return start()
        except VerifyError:
            raise
        except EngineError as error:
            message = str(error)
            raise VerifyError(
                message if message.startswith(what) else f"{what}: {message}"
            ) from None


def http_status(port: int, path: str, *, timeout: float, host: str = "127.0.0.1") -> int:
    """GET host:port/path on a fresh connection and return the status code."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _last_line(logs: str) -> str:
    lines = [line.strip() for line in logs.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
