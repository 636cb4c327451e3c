"""The connection to the engine, and the one place the SDK's errors become kitbuild's.

Every engine call in the other modules runs inside :func:`engine_call`, so no SDK
exception reaches the user as a traceback; :func:`one_line` shortens what the engine
said to the line that names the cause.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING

import docker
import docker.errors
import requests.exceptions

from builder.errors import DockerUnavailable, EngineError, Missing

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


def connect(environ: Mapping[str, str] | None = None) -> docker.DockerClient:
    """An SDK client for the engine DOCKER_HOST (or the local socket) names, pinged."""
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
            f"cannot reach the Docker engine ({one_line(error)}); "
            "start it or set DOCKER_HOST, then check with `docker info`"
        ) from None
    return client


@contextlib.contextmanager
def engine_call(what: str) -> Iterator[None]:
    """Run SDK calls; any failure becomes one kitbuild error line that says what failed."""
    try:
        yield
    except docker.errors.NotFound as error:
        raise Missing(f"{what}: {one_line(error)}") from None
    except docker.errors.APIError as error:
        raise EngineError(f"{what} failed: {one_line(error)}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as error:
        raise DockerUnavailable(f"{what}: lost the Docker engine ({one_line(error)})") from None
    except requests.exceptions.RequestException as error:  # a read timeout, mostly
        raise EngineError(f"{what} timed out ({one_line(error)})") from None


def one_line(error: object, limit: int = 300) -> str:
    """The last non-blank line of an error (the engine's messages end with the cause)."""
    text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    return line if len(line) <= limit else f"{line[:100]} ... {line[-(limit - 105) :]}"


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
