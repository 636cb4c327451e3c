"""A handle on one container: its state, ports, addresses, logs and processes, and its end."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import requests.exceptions

from builder.engine._client import engine_call
from builder.errors import EngineError, Missing

if TYPE_CHECKING:
    from collections.abc import Sequence


#: The bridge that connects a node's Swarm tasks to the node itself.
SWARM_BRIDGE = "docker_gwbridge"


@dataclasses.dataclass(frozen=True)
class ExitState:
    """How a container ended."""

    code: int
    oom_killed: bool


class Container:
    """A handle on one container; every method turns engine errors into kitbuild's."""

    def __init__(self, sdk_container: Any) -> None:
        """Wrap an SDK container; the gateway makes these."""
        self._container = sdk_container

    def __repr__(self) -> str:
        """The container's name, for assertion messages."""
        return f"Container({self.name})"

    @property
    def id(self) -> str:
        """The engine's id."""
        return str(self._container.id)

    @property
    def name(self) -> str:
        """The engine's name for it."""
        return str(self._container.name)

    def start(self) -> None:
        """Start a created (or stopped) container."""
        with engine_call(f"starting {self.name}"):
            self._container.start()

    def wait(self, timeout: float) -> int:
        """Wait for the container to exit; its exit code. EngineError after ``timeout`` s."""
        with engine_call(f"waiting for {self.name}"):
            try:
                return int(self._container.wait(timeout=timeout).get("StatusCode", 1))
            # The SDK reports its own read timeout as a requests error (a ConnectionError
            # on the unix socket), which would otherwise read as a lost engine.
            except requests.exceptions.RequestException:
                raise EngineError(f"{self.name} did not exit within {timeout:.0f} s") from None

    def logs(self, *, stdout: bool = True, stderr: bool = True, timestamps: bool = False) -> str:
        """Everything the container printed so far ("" once it is gone).

        With ``timestamps`` each line starts with the engine's RFC 3339 time and a space.
        """
        try:
            with engine_call(f"reading the logs of {self.name}"):
                output = self._container.logs(stdout=stdout, stderr=stderr, timestamps=timestamps)
        except Missing:
            return ""
        return bytes(output).decode(errors="replace")

    def inspect(self) -> dict[str, Any]:
        """The engine's full description (``docker inspect``), fresh."""
        with engine_call(f"inspecting {self.name}"):
            self._container.reload()
            return dict(self._container.attrs)

    def status(self) -> str:
        """Its state: created, running, exited ..., or removed once it is gone."""
        try:
            return str(self.inspect()["State"]["Status"])
        except Missing:
            return "removed"

    def running(self) -> bool:
        """Whether it is running now."""
        return self.status() == "running"

    def health(self) -> str | None:
        """Its healthcheck's verdict ("starting", "healthy", "unhealthy"), None without one."""
        health = self.inspect()["State"].get("Health")
        return None if not health else str(health.get("Status"))

    def exit_state(self) -> ExitState:
        """Its exit code and whether the kernel killed it for memory."""
        state = self.inspect()["State"]
        return ExitState(int(state.get("ExitCode", 0)), bool(state.get("OOMKilled")))

    def port(self, container_port: int) -> int:
        """The host port ``container_port``/tcp is published at."""
        bindings = self.inspect()["NetworkSettings"]["Ports"].get(f"{container_port}/tcp")
        if not bindings:
            raise EngineError(f"{self.name} publishes no port {container_port}")
        return int(bindings[0]["HostPort"])

    def address(self, network: str) -> str:
        """Its IP address on ``network``."""
        networks = self.inspect()["NetworkSettings"]["Networks"]
        if network not in networks:
            raise EngineError(f"{self.name} is not on network {network}")
        return str(networks[network]["IPAddress"])

    def gateway_address(self) -> str:
        """Its address on docker_gwbridge, where a Swarm task is reachable from its node."""
        with engine_call(f"looking for {self.name} on docker_gwbridge"):
            bridge = self._container.client.networks.get(SWARM_BRIDGE)
            bridge.reload()
            endpoint = (bridge.attrs.get("Containers") or {}).get(self.id)
        if not endpoint:
            raise EngineError(f"{self.name} is not on {SWARM_BRIDGE}: is it a Swarm task?")
        return str(endpoint["IPv4Address"]).split("/", 1)[0]

    def child_commands(self) -> list[str]:
        """The command lines of its PID 1's children (gunicorn's workers, say)."""
        master = int(self.inspect()["State"]["Pid"])  # the host's PID of the container's PID 1
        with engine_call(f"listing the processes of {self.name}"):
            top = self._container.top(ps_args="-eo pid,ppid,args")
        rows = [dict(zip(top["Titles"], row, strict=True)) for row in top["Processes"]]
        return [row["COMMAND"] for row in rows if int(row["PPID"]) == master]

    def execute(self, command: Sequence[str]) -> tuple[int, str]:
        """Run a command inside it; its exit code and output."""
        with engine_call(f"running {command[0]} in {self.name}"):
            code, output = self._container.exec_run(list(command))
        return int(code), bytes(output).decode(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout`` s)."""
        with engine_call(f"stopping {self.name}"):
            self._container.stop(timeout=int(timeout))

    def restart(self, timeout: float = 10) -> None:
        """Stop and start it again, in place."""
        with engine_call(f"restarting {self.name}"):
            self._container.restart(timeout=int(timeout))

    def remove(self) -> None:
        """Remove it and its anonymous volumes, in whatever state it is; gone is fine."""
        with contextlib.suppress(Missing), engine_call(f"removing {self.name}"):
            self._container.remove(force=True, v=True)
