"""Containers: what to create (:class:`ContainerSpec`), creating and starting them, finding them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import docker.errors
import docker.types

from builder.engine._client import engine_call, one_line
from builder.engine._container import Container
from builder.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


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


#: Starts tried when the engine picks a host port that is still taken.
PORT_ATTEMPTS = 3

# Docker 20.10 picks host ports from the range the kernel gives clients, so a busy host can
# hand out one a client socket holds; the next pick is free.
_PORT_TAKEN = ("already allocated", "address already in use")


def port_taken(error: object) -> bool:
    """Whether a failed start failed only because the host port the engine picked was taken."""
    return any(text in str(error) for text in _PORT_TAKEN)


def create_options(spec: ContainerSpec) -> dict[str, Any]:
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


class Containers:
    """Create, start, find and run containers."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Work through an SDK client."""
        self._client = client

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) a container as ``spec`` says."""
        with engine_call(f"creating a container of {spec.image}"):
            return Container(self._client.containers.create(spec.image, **create_options(spec)))

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start a container; a host port the engine found taken is tried again."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            container = self.create(spec)
            try:
                container.start()
            except EngineError as error:
                container.remove()
                if attempt == PORT_ATTEMPTS or not port_taken(error):
                    raise
                continue
            return container
        raise AssertionError("not reached")  # pragma: no cover

    def container(self, name_or_id: str) -> Container:
        """A handle on an existing container."""
        with engine_call(f"looking for container {name_or_id}"):
            return Container(self._client.containers.get(name_or_id))

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        """Every container (any state) carrying all of ``labels``."""
        selector = {"label": [f"{key}={value}" for key, value in labels.items()]}
        with engine_call("listing containers"):
            found = self._client.containers.list(all=True, filters=selector)
        return [Container(sdk) for sdk in found]

    def run(self, image: str, command: Sequence[str], options: Mapping[str, Any]) -> bytes:
        """Run a throwaway container to completion and return its output."""
        try:
            output: bytes = self._client.containers.run(
                image, list(command), remove=True, stdout=True, stderr=True, **options
            )
        except docker.errors.ContainerError as error:
            raise EngineError(
                f"{' '.join(command)} in {image} exited {error.exit_status}: "
                f"{one_line(error.stderr or b'')}"
            ) from None
        except docker.errors.DockerException as error:
            raise EngineError(f"running {image} failed: {one_line(error)}") from None
        return output
