"""The one module that talks to the Docker engine (through the Docker SDK for Python).

Everything else in kitbuild asks :class:`DockerGateway` for what it needs, in kitbuild's
own terms, and gets kitbuild's own errors back, so the SDK's exceptions never reach the
user as tracebacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path


class DockerUnavailable(KitError):
    """The Docker engine cannot be reached."""


class BuildFailed(KitError):
    """``docker build`` stopped at a step; the message names the step and the error."""


class ImageMissing(KitError):
    """An image that should exist locally does not."""


@dataclasses.dataclass(frozen=True)
class ImageSummary:
    """What kitbuild reports about a built image."""

    id: str
    size: int
    labels: Mapping[str, str]
    user: str
    history: tuple[str, ...]  # the command that made each layer, newest first


_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")


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

    def image_exists(self, reference: str) -> bool:
        """Say whether an image is present locally (never pulls)."""
        try:
            self._client.api.inspect_image(reference)
        except docker.errors.ImageNotFound:
            return False
        return True

    def pull(self, reference: str) -> bool:
        """Try to pull an image; return False when no registry provides it."""
        try:
            self._client.images.pull(reference)
        except docker.errors.DockerException:
            return False
        return True

    def summary(self, reference: str) -> ImageSummary:
        """Describe a local image: id, size, labels, user and layer history."""
        try:
            info = self._client.api.inspect_image(reference)
            history = self._client.api.history(reference)
        except docker.errors.ImageNotFound:
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
        try:
            result = self._client.api.import_image(
                src=str(tarball), repository=repository, tag=tag, changes=list(changes)
            )
        except docker.errors.DockerException as error:
            raise KitError(f"docker import of {tarball} failed: {_one_line(error)}") from None
        image_id = _parse_import_result(result)
        if image_id is None:
            raise KitError(f"docker import of {tarball} failed: {str(result).strip()[:200]}")
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

    def remove_image(self, reference: str) -> None:
        """Remove a local image if it exists."""
        with contextlib.suppress(docker.errors.ImageNotFound):
            self._client.api.remove_image(reference, force=True)

    def labelled(self, key: str, value: str) -> tuple[list[str], list[str]]:
        """The names of the containers (any state) and networks labelled ``key=value``."""
        selector = {"label": f"{key}={value}"}
        containers = self._client.containers.list(all=True, filters=selector)
        networks = self._client.networks.list(filters=selector)
        return [c.name for c in containers], [n.name for n in networks]

    def remove_labelled(self, key: str, value: str) -> None:
        """Remove every container (with its anonymous volumes) and network labelled key=value."""
        selector = {"label": f"{key}={value}"}
        try:
            for container in self._client.containers.list(all=True, filters=selector):
                with contextlib.suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
            for network in self._client.networks.list(filters=selector):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        except docker.errors.DockerException as error:
            raise DockerUnavailable(
                f"could not remove the containers labelled {key}={value} "
                f"({_one_line(error)}); remove them with `docker rm -f`"
            ) from None

    def run(self, image: str, command: Sequence[str], **options: Any) -> bytes:
        """Run a throwaway container and return its output (for checks and tests)."""
        try:
            output: bytes = self._client.containers.run(
                image, list(command), remove=True, stdout=True, stderr=True, **options
            )
        except docker.errors.ContainerError as error:
            raise KitError(
                f"{' '.join(command)} in {image} exited {error.exit_status}: "
                f"{_one_line(error.stderr or b'')}"
            ) from None
        return output


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


def _one_line(error: object) -> str:
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
