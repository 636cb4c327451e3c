"""The one module that talks to the Docker engine (the Docker SDK, and testcontainers).

Everything else in kitbuild asks :class:`DockerGateway` for what it needs, in kitbuild's
own terms: images, builds, networks and :class:`Container` handles. Every engine call
goes through :func:`_engine`, which turns the SDK's exceptions into kitbuild's own errors,
so none reaches the user as a traceback. testcontainers starts the database for
``kitbuild verify`` (its ``MySqlContainer`` knows how to wait for a MySQL server); it is
used here and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from builder.errors import (
    BuildFailed,
    DockerUnavailable,
    EngineError,
    ImageMissing,
    Missing,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ImageSummary:
    """What kitbuild reports about a built image."""

    id: str
    size: int
    labels: Mapping[str, str]
    user: str
    history: tuple[str, ...]  # the command that made each layer, newest first


@dataclasses.dataclass(frozen=True)
class ContainerSpec:
    """A container to create: what it runs and how it is wired, in kitbuild's terms."""

    image: str
    command: Sequence[str] | None = None  # None: the image's own CMD
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    network: str | None = None  # a network name, or "none" for no network at all
    aliases: Sequence[str] = ()  # names other containers on ``network`` reach it by
    publish: Sequence[int] = ()  # TCP ports published on 127.0.0.1, at free host ports
    cpus: float | None = None
    read_only: bool = False
    tmpfs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    healthcheck: bool = True  # False switches the image's HEALTHCHECK off


@dataclasses.dataclass(frozen=True)
class ExitState:
    """How a container ended."""

    code: int
    oom_killed: bool


#: The bridge that connects a node's Swarm tasks to the node itself.
SWARM_BRIDGE = "docker_gwbridge"

#: The label `docker stack deploy` puts on everything of one stack.
STACK_LABEL = "com.docker.stack.namespace"

#: Starts tried when the engine picks a host port that is still taken.
PORT_ATTEMPTS = 3

_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
# Docker 20.10 picks host ports from the range the kernel gives clients, so a busy host can
# hand out one a client socket holds; the next pick is free.
_PORT_TAKEN = ("already allocated", "address already in use")


@contextlib.contextmanager
def _engine(what: str) -> Iterator[None]:
    """Run SDK calls; any failure becomes one kitbuild error line that says what failed."""
    try:
        yield
    except docker.errors.NotFound as error:
        raise Missing(f"{what}: {_one_line(error)}") from None
    except docker.errors.APIError as error:
        raise EngineError(f"{what} failed: {_one_line(error)}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as error:
        raise DockerUnavailable(f"{what}: lost the Docker engine ({_one_line(error)})") from None
    except requests.exceptions.RequestException as error:  # a read timeout, mostly
        raise EngineError(f"{what} timed out ({_one_line(error)})") from None


class Container:
    """A handle on one container; every method turns engine errors into kitbuild's."""

    def __init__(self, sdk_container: Any) -> None:
        """Wrap an SDK container; :class:`DockerGateway` makes these."""
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
        with _engine(f"starting {self.name}"):
            self._container.start()

    def wait(self, timeout: float) -> int:
        """Wait for the container to exit; its exit code. EngineError after ``timeout`` s."""
        with _engine(f"waiting for {self.name}"):
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
            with _engine(f"reading the logs of {self.name}"):
                output = self._container.logs(stdout=stdout, stderr=stderr, timestamps=timestamps)
        except Missing:
            return ""
        return bytes(output).decode(errors="replace")

    def inspect(self) -> dict[str, Any]:
        """The engine's full description (``docker inspect``), fresh."""
        with _engine(f"inspecting {self.name}"):
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
        with _engine(f"looking for {self.name} on docker_gwbridge"):
            bridge = self._container.client.networks.get(SWARM_BRIDGE)
            bridge.reload()
            endpoint = (bridge.attrs.get("Containers") or {}).get(self.id)
        if not endpoint:
            raise EngineError(f"{self.name} is not on {SWARM_BRIDGE}: is it a Swarm task?")
        return str(endpoint["IPv4Address"]).split("/", 1)[0]

    def child_commands(self) -> list[str]:
        """The command lines of its PID 1's children (gunicorn's workers, say)."""
        master = int(self.inspect()["State"]["Pid"])  # the host's PID of the container's PID 1
        with _engine(f"listing the processes of {self.name}"):
            top = self._container.top(ps_args="-eo pid,ppid,args")
        rows = [dict(zip(top["Titles"], row, strict=True)) for row in top["Processes"]]
        return [row["COMMAND"] for row in rows if int(row["PPID"]) == master]

    def execute(self, command: Sequence[str]) -> tuple[int, str]:
        """Run a command inside it; its exit code and output."""
        with _engine(f"running {command[0]} in {self.name}"):
            code, output = self._container.exec_run(list(command))
        return int(code), bytes(output).decode(errors="replace")

    def stop(self, timeout: float = 10) -> None:
        """Stop it (SIGTERM, then SIGKILL after ``timeout`` s)."""
        with _engine(f"stopping {self.name}"):
            self._container.stop(timeout=int(timeout))

    def restart(self, timeout: float = 10) -> None:
        """Stop and start it again, in place."""
        with _engine(f"restarting {self.name}"):
            self._container.restart(timeout=int(timeout))

    def remove(self) -> None:
        """Remove it and its anonymous volumes, in whatever state it is; gone is fine."""
        with contextlib.suppress(Missing), _engine(f"removing {self.name}"):
            self._container.remove(force=True, v=True)


class DockerGateway:
    """A thin, typed facade over ``docker.DockerClient``."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Wrap an SDK client; use :meth:`connect` to make one from the environment."""
        self._client = client

    @classmethod
    def connect(cls, environ: Mapping[str, str] | None = None) -> DockerGateway:
        """Connect to the engine DOCKER_HOST (or the local socket) names, and ping it."""
        host = (os.environ if environ is None else environ).get("DOCKER_HOST", "")
        if not host or host.startswith("unix://"):
            _check_unix_socket(host.removeprefix("unix://") or "/var/run/docker.sock")
        client = None
        try:
            client = docker.from_env()
            client.ping()
        except docker.errors.DockerException as error:
            if client is not None:
                client.close()
            raise DockerUnavailable(
                f"cannot reach the Docker engine ({_one_line(error)}); "
                "start it or set DOCKER_HOST, then check with `docker info`"
            ) from None
        return cls(client)

    def close(self) -> None:
        """Close the connection to the engine."""
        self._client.close()

    # ------------------------------------------------------------------------ images

    def image_exists(self, reference: str) -> bool:
        """Say whether an image is present locally (never pulls)."""
        try:
            with _engine(f"looking for image {reference}"):
                self._client.api.inspect_image(reference)
        except Missing:
            return False
        return True

    def pull(self, reference: str) -> bool:
        """Try to pull an image; return False when no registry provides it."""
        try:
            with _engine(f"pulling {reference}"):
                self._client.images.pull(reference)
                return True
        except EngineError:
            return False

    def images(self, reference: str) -> list[str]:
        """The tags of the local images matching ``reference`` (a pattern such as kit/*)."""
        with _engine(f"listing images {reference}"):
            found = self._client.images.list(name=reference)
        return sorted(tag for image in found for tag in image.tags)

    def summary(self, reference: str) -> ImageSummary:
        """Describe a local image: id, size, labels, user and layer history."""
        try:
            with _engine(f"inspecting image {reference}"):
                info = self._client.api.inspect_image(reference)
                history = self._client.api.history(reference)
        except Missing:
            raise ImageMissing(f"image {reference} not found locally") from None
        config = info.get("Config") or {}
        return ImageSummary(
            id=info["Id"],
            size=int(info.get("Size", 0)),
            labels=dict(config.get("Labels") or {}),
            user=config.get("User") or "",
            history=tuple(str(layer.get("CreatedBy", "")) for layer in history),
        )

    def import_rootfs(self, tarball: Path, reference: str, changes: Sequence[str]) -> str:
        """``docker import`` a root filesystem tarball as ``reference``; return the image id."""
        repository, _, tag = reference.rpartition(":")
        with _engine(f"docker import of {tarball}"):
            result = self._client.api.import_image(
                src=str(tarball), repository=repository, tag=tag, changes=list(changes)
            )
        image_id = _parse_import_result(result)
        if image_id is None:
            raise EngineError(f"docker import of {tarball} failed: {str(result).strip()[:200]}")
        return image_id

    def build(
        self,
        context: Path,
        tag: str,
        *,
        network_mode: str | None = None,
        nocache: bool = False,
        on_output: Callable[[str], None] = lambda _line: None,
    ) -> str:
        """Build the context's Dockerfile with the classic builder, streaming its output.

        Returns the image id. On failure, raises BuildFailed naming the failing step;
        the step's output has already gone to ``on_output``. The tag is only applied
        when the build succeeds, so a failed build leaves no half-built image tagged.
        """
        step = "?"
        step_text = ""
        image_id: str | None = None
        failure: BuildFailed | None = None
        try:
            stream = self._client.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,  # a local FROM must never be refreshed from a registry
                decode=True,
                network_mode=network_mode,
                nocache=nocache,
            )
            for chunk in stream:
                if "stream" in chunk:
                    text = str(chunk["stream"])
                    on_output(text)
                    for line in text.splitlines():
                        match = _STEP.match(line.strip())
                        if match:
                            step, step_text = match.group(1), match.group(2)
                        built = re.match(r"^Successfully built ([0-9a-f]+)", line.strip())
                        if built and image_id is None:
                            image_id = built.group(1)
                elif "error" in chunk and failure is None:
                    # Read on to the end of the stream, so its connection is released.
                    failure = BuildFailed(
                        f"build failed at step {step} ({step_text[:80]}): "
                        f"{_one_line(chunk['error'])}"
                    )
                elif "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
        except docker.errors.APIError as error:
            raise BuildFailed(f"build failed: {_one_line(error)}") from None
        except docker.errors.DockerException as error:
            raise DockerUnavailable(f"lost the Docker engine: {_one_line(error)}") from None
        if failure is not None:
            raise failure
        if image_id is None:
            raise BuildFailed(f"build of {tag} ended without an image id")
        return image_id

    def tag_image(self, source: str, target: str) -> None:
        """Give a local image another name (``docker tag``)."""
        repository, _, tag = target.rpartition(":")
        with _engine(f"tagging {source} as {target}"):
            self._client.images.get(source).tag(repository, tag)

    def remove_image(self, reference: str) -> None:
        """Remove a local image if it exists."""
        with contextlib.suppress(Missing), _engine(f"removing image {reference}"):
            self._client.api.remove_image(reference, force=True)

    def read_file(self, image: str, path: str) -> bytes:
        """One regular file from an image, read through a created (never started) container."""
        with _engine(f"reading {path} from {image}"):
            container = self._client.api.create_container(image, command=["true"])
            try:
                chunks, _stat = self._client.api.get_archive(container["Id"], path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                    member = archive.next()
                    data = archive.extractfile(member) if member is not None else None
                    if data is None:
                        raise EngineError(f"{path} in {image} is not a regular file")
                    return data.read()
            finally:
                self._client.api.remove_container(container["Id"], force=True)

    # ---------------------------------------------------------------------- networks

    def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """A user-defined bridge network, so containers reach each other by alias."""
        with _engine(f"creating network {name}"):
            self._client.networks.create(name, driver="bridge", labels=dict(labels))
        return name

    # -------------------------------------------------------------------- containers

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) a container as ``spec`` says."""
        with _engine(f"creating a container of {spec.image}"):
            return Container(self._client.containers.create(spec.image, **_create_options(spec)))

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start a container; a host port the engine found taken is tried again."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            container = self.create(spec)
            try:
                container.start()
            except EngineError as error:
                container.remove()
                if attempt == PORT_ATTEMPTS or not any(t in str(error) for t in _PORT_TAKEN):
                    raise
                continue
            return container
        raise AssertionError("not reached")  # pragma: no cover

    def container(self, name_or_id: str) -> Container:
        """A handle on an existing container (one compose or Swarm started, say)."""
        with _engine(f"looking for container {name_or_id}"):
            return Container(self._client.containers.get(name_or_id))

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        """Every container (any state) carrying all of ``labels``."""
        selector = {"label": [f"{key}={value}" for key, value in labels.items()]}
        with _engine("listing containers"):
            found = self._client.containers.list(all=True, filters=selector)
        return [Container(sdk) for sdk in found]

    def run(self, image: str, command: Sequence[str], **options: Any) -> bytes:
        """Run a throwaway container to completion and return its output (checks, probes)."""
        try:
            output: bytes = self._client.containers.run(
                image, list(command), remove=True, stdout=True, stderr=True, **options
            )
        except docker.errors.ContainerError as error:
            raise EngineError(
                f"{' '.join(command)} in {image} exited {error.exit_status}: "
                f"{_one_line(error.stderr or b'')}"
            ) from None
        except docker.errors.DockerException as error:
            raise EngineError(f"running {image} failed: {_one_line(error)}") from None
        return output

    def start_mysql(
        self,
        spec: ContainerSpec,
        *,
        user: str,
        password: str,
        root_password: str,
        database: str,
    ) -> Container:
        """Start a MySQL-compatible server with testcontainers' ``MySqlContainer``.

        It waits, as testcontainers does, for the server's "ready for connections" line
        twice (the init server's, then the real one's) and publishes 3306. Ryuk, its
        reaper, is off: it is an image that would have to be pulled, and kitbuild removes
        its containers by label instead.
        """
        from testcontainers.community.mysql import MySqlContainer  # noqa: PLC0415 - slow import
        from testcontainers.core.config import testcontainers_config  # noqa: PLC0415

        testcontainers_config.ryuk_disabled = True
        server = MySqlContainer(
            spec.image,
            username=user,
            password=password,
            root_password=root_password,
            dbname=database,
        )
        if spec.command is not None:
            server = server.with_command(list(spec.command))
        options = _create_options(spec)
        # MySqlContainer passes these itself: its command, its environment and port 3306.
        for own in ("command", "environment", "ports"):
            options.pop(own, None)
        server = server.with_kwargs(**options)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                server.start()
            # testcontainers raises what it meets: the SDK's errors, TimeoutError, or a
            # RuntimeError when the container exits early. All mean "the server did not start".
            except Exception as error:
                # Remove what was created, if anything was: the same "whatever it raises".
                with contextlib.suppress(Exception):
                    server.get_wrapped_container().remove(force=True, v=True)
                taken = any(text in str(error) for text in _PORT_TAKEN)
                if not taken or attempt == PORT_ATTEMPTS:
                    raise EngineError(f"starting {spec.image} failed: {_one_line(error)}") from None
                continue
            return Container(server.get_wrapped_container())
        raise AssertionError("not reached")  # pragma: no cover

    # ------------------------------------------------------------------------- swarm

    def swarm_state(self) -> str:
        """The node's Swarm state: "active", "inactive", "pending" ..."""
        with _engine("reading the engine's Swarm state"):
            return str(self._client.info()["Swarm"]["LocalNodeState"])

    def ensure_swarm(self) -> None:
        """Make this engine a one-node swarm if it is not in one (it never leaves again).

        Leaving (`docker swarm leave`) stopped bridge networks' DNS on this kind of engine
        until dockerd restarted, so kitbuild never leaves a swarm it made.
        """
        if self.swarm_state() == "active":
            return
        with _engine("docker swarm init"):
            self._client.swarm.init()

    def stack_deploy(self, stack_file: Path, name: str, timeout: float = 120) -> str:
        """`docker stack deploy` (the SDK has no stacks); local images, never a registry."""
        argv = ["stack", "deploy", "--resolve-image", "never", "--prune"]
        return _docker_cli([*argv, "-c", str(stack_file), name], timeout)

    def stack_remove(self, name: str, within: float = 120) -> None:
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
            with _engine(f"waiting for stack {name} to go"):
                left = [c.id for c in self._client.containers.list(filters=selector, sparse=True)]
                left += [n.name for n in self._client.networks.list(filters=selector)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(1)
        if left:
            raise EngineError(f"stack {name} still has {left} after {within} s")
        with _engine(f"removing the volumes of stack {name}"):
            for container in self._client.containers.list(all=True, filters=selector, sparse=True):
                Container(container).remove()
            for volume in self._client.volumes.list(filters=selector):
                volume.remove(force=True)

    def service(self, name: str) -> Service:
        """A handle on a Swarm service (``<stack>_<service>``)."""
        with _engine(f"looking for service {name}"):
            return Service(self._client.services.get(name), self)

    # ----------------------------------------------------------------------- cleanup

    def labelled(self, key: str, value: str | None = None) -> list[str]:
        """The names of the containers (any state) and networks labelled ``key[=value]``."""
        selector = {"label": key if value is None else f"{key}={value}"}
        with _engine("listing labelled containers and networks"):
            containers = self._client.containers.list(all=True, filters=selector)
            networks = self._client.networks.list(filters=selector)
        return [c.name for c in containers] + [n.name for n in networks]

    def remove_labelled(self, key: str, value: str) -> None:
        """Remove every container (with its anonymous volumes) and network labelled key=value."""
        selector = {"label": f"{key}={value}"}
        try:
            with _engine(f"removing what is labelled {key}={value}"):
                for container in self._client.containers.list(all=True, filters=selector):
                    Container(container).remove()
                for network in self._client.networks.list(filters=selector):
                    with contextlib.suppress(docker.errors.NotFound):
                        network.remove()
        except EngineError as error:
            raise DockerUnavailable(
                f"could not remove the containers labelled {key}={value} "
                f"({error}); remove them with `docker rm -f`"
            ) from None


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

    def __init__(self, sdk_service: Any, gateway: DockerGateway) -> None:
        """Wrap an SDK service; :meth:`DockerGateway.service` makes these."""
        self._service = sdk_service
        self._gateway = gateway

    @property
    def name(self) -> str:
        """The service's name."""
        return str(self._service.name)

    def tasks(self) -> list[Task]:
        """Every task Swarm still knows of (it keeps a few old ones per slot)."""
        with _engine(f"listing the tasks of {self.name}"):
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
            self._gateway.container(task.container_id)
            for task in self.tasks()
            if task.container_id and (not state or task.state == state)
        ]

    def scale(self, replicas: int) -> None:
        """Run ``replicas`` tasks (`docker service scale`)."""
        with _engine(f"scaling {self.name} to {replicas}"):
            self._service.reload()
            self._service.scale(replicas)

    def update_state(self) -> str | None:
        """The rolling update's state ("updating", "completed", "rollback_completed" ...)."""
        with _engine(f"inspecting {self.name}"):
            self._service.reload()
            status = self._service.attrs.get("UpdateStatus") or {}
        return status.get("State")


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
        raise EngineError(f"{what} failed: {_one_line(done.stderr or done.stdout)}")
    return done.stdout


def _create_options(spec: ContainerSpec) -> dict[str, Any]:
    """The SDK's ``containers.create`` keywords for a spec."""
    options: dict[str, Any] = {
        "environment": dict(spec.environment),
        "labels": dict(spec.labels),
        "read_only": spec.read_only,
    }
    if spec.command is not None:
        options["command"] = list(spec.command)
    if spec.network == "none":
        options["network_mode"] = "none"
    elif spec.network is not None:
        options["network"] = spec.network
        if spec.aliases:
            options["networking_config"] = {
                spec.network: docker.types.EndpointConfig(
                    version="1.41", aliases=list(spec.aliases)
                )
            }
    if spec.publish:
        options["ports"] = {f"{port}/tcp": ("127.0.0.1", None) for port in spec.publish}
    if spec.cpus is not None:
        options["nano_cpus"] = round(spec.cpus * 1e9)
    if spec.tmpfs:
        options["tmpfs"] = dict(spec.tmpfs)
    if not spec.healthcheck:
        options["healthcheck"] = {"test": ["NONE"]}
    return options


def _check_unix_socket(path: str) -> None:
    """Fail clearly, and without the socket docker-py leaks on a failed connect."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as error:
            raise DockerUnavailable(
                f"cannot reach the Docker engine at unix://{path} "
                f"({error.strerror or error}); start it or set DOCKER_HOST, "
                "then check with `docker info`"
            ) from None


def _parse_import_result(result: Any) -> str | None:
    text = result if isinstance(result, str) else str(result)
    match = re.search(r"sha256:[0-9a-f]{64}", text)
    return match.group(0) if match else None


def _one_line(error: object, limit: int = 300) -> str:
    """The last non-blank line of an error (the engine's messages end with the cause)."""
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    return line if len(line) <= limit else f"{line[:100]} ... {line[-(limit - 105) :]}"


class LazyGateway:
    """Connects to the engine on first use, so work that never needs it never waits for it.

    A bad project is then reported as such even when Docker is down. Call it to get the
    gateway; :meth:`close` closes it if it was ever opened.
    """

    def __init__(self, connect: Callable[[], DockerGateway] = DockerGateway.connect) -> None:
        """Connect with ``connect`` when first asked."""
        self._connect = connect
        self._gateway: DockerGateway | None = None

    def __call__(self) -> DockerGateway:
        """The gateway, connected now if it was not yet."""
        if self._gateway is None:
            self._gateway = self._connect()
        return self._gateway

    def close(self) -> None:
        """Close the connection, if one was made."""
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
