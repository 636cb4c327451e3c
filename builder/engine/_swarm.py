"""Swarm: the node's swarm, stacks (through the docker CLI), services and their tasks."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from typing import TYPE_CHECKING, Any

from builder.engine._client import engine_call, one_line
from builder.engine._container import Container
from builder.errors import DockerUnavailable, EngineError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import docker

    from builder.engine._containers import Containers


#: The label `docker stack deploy` puts on everything of one stack.
STACK_LABEL = "com.docker.stack.namespace"


@dataclasses.dataclass(frozen=True)
class Task:
    """One task of a Swarm service: its slot, states, image and container (once it has one)."""

    id: str
    slot: int | None
    state: str  # what it is: "running", "complete", "shutdown" ...
    desired: str  # what Swarm wants it to be
    image: str
    container_id: str | None
    error: str


class Service:
    """A handle on one Swarm service; engine errors become kitbuild's."""

    def __init__(self, sdk_service: Any, containers: Containers) -> None:
        """Wrap an SDK service; the gateway's ``service`` makes these."""
        self._service = sdk_service
        self._containers = containers

    @property
    def name(self) -> str:
        """The service's name."""
        return str(self._service.name)

    def tasks(self) -> list[Task]:
        """Every task Swarm still knows of (it keeps a few old ones per slot)."""
        with engine_call(f"listing the tasks of {self.name}"):
            found = self._service.tasks()
        return [
            Task(
                id=str(task["ID"]),
                slot=task.get("Slot"),
                state=str(task["Status"]["State"]),
                desired=str(task["DesiredState"]),
                image=str(task["Spec"]["ContainerSpec"]["Image"]).split("@", 1)[0],
                container_id=(task["Status"].get("ContainerStatus") or {}).get("ContainerID"),
                error=str(task["Status"].get("Err") or ""),
            )
            for task in found
        ]

    def containers(self, state: str = "running") -> list[Container]:
        """The containers of the tasks in ``state`` (any, with state="")."""
        return [
            self._containers.container(task.container_id)
            for task in self.tasks()
            if task.container_id and (not state or task.state == state)
        ]

    def scale(self, replicas: int) -> None:
        """Run ``replicas`` tasks (`docker service scale`)."""
        with engine_call(f"scaling {self.name} to {replicas}"):
            self._service.reload()
            self._service.scale(replicas)

    def update_state(self) -> str | None:
        """The rolling update's state ("updating", "completed", "rollback_completed" ...)."""
        with engine_call(f"inspecting {self.name}"):
            self._service.reload()
            status = self._service.attrs.get("UpdateStatus") or {}
        return status.get("State")


class Swarm:
    """The node's swarm and what runs on it."""

    def __init__(self, client: docker.DockerClient, containers: Containers) -> None:
        """Work through an SDK client; services find their tasks' containers in ``containers``."""
        self._client = client
        self._containers = containers

    def state(self) -> str:
        """The node's Swarm state: "active", "inactive", "pending" ..."""
        with engine_call("reading the engine's Swarm state"):
            return str(self._client.info()["Swarm"]["LocalNodeState"])

    def ensure(self) -> None:
        """Make this engine a one-node swarm if it is not in one (it never leaves again).

        Leaving (`docker swarm leave`) stopped bridge networks' DNS on this kind of engine
        until dockerd restarted, so kitbuild never leaves a swarm it made.
        """
        if self.state() == "active":
            return
        with engine_call("docker swarm init"):
            self._client.swarm.init()

    def stack_deploy(self, stack_file: Path, name: str, timeout: float) -> str:
        """`docker stack deploy` (the SDK has no stacks); local images, never a registry."""
        argv = ["stack", "deploy", "--resolve-image", "never", "--prune"]
        return _docker_cli([*argv, "-c", str(stack_file), name], timeout)

    def stack_remove(self, name: str, within: float) -> None:
        """`docker stack rm`, then wait until its containers and network are gone; then its volumes.

        A stack deployed again before its network is gone fails ("network ... not found"),
        and volumes in use cannot be removed, hence the wait. The exited containers of
        finished jobs, which the engine keeps, are removed here.
        """
        _docker_cli(["stack", "rm", name], 60)
        selector = {"label": f"{STACK_LABEL}={name}"}
        deadline = time.monotonic() + within
        while True:
            # Sparse: the engine removes containers meanwhile, and a full listing inspects
            # each one it found (a 404 for one just gone).
            with engine_call(f"waiting for stack {name} to go"):
                left = [c.id for c in self._client.containers.list(filters=selector, sparse=True)]
                left += [n.name for n in self._client.networks.list(filters=selector)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(1)
        if left:
            raise EngineError(f"stack {name} still has {left} after {within} s")
        with engine_call(f"removing the volumes of stack {name}"):
            for container in self._client.containers.list(all=True, filters=selector, sparse=True):
                Container(container).remove()
            for volume in self._client.volumes.list(filters=selector):
                volume.remove(force=True)

    def service(self, name: str) -> Service:
        """A handle on a Swarm service (``<stack>_<service>``)."""
        with engine_call(f"looking for service {name}"):
            return Service(self._client.services.get(name), self._containers)


def _docker_cli(argv: Sequence[str], timeout: float) -> str:
    """Run the docker CLI for what the SDK lacks (stacks); its output, or one EngineError line."""
    what = f"docker {' '.join(argv[:2])}"
    try:
        done = subprocess.run(
            ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise DockerUnavailable(f"{what}: the docker command is not installed") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what} did not finish within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise EngineError(f"{what} failed: {one_line(done.stderr or done.stdout)}")
    return done.stdout
