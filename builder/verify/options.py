"""What `kitbuild verify` is asked to do, checked before anything starts."""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from builder.errors import ConfigError, VerifyError
from builder.image.service_images import MYSQL_IMAGE
from builder.verify.load import MAX_CONCURRENCY
from kitbuild_runtime import environment, values

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: MariaDB accepts max_connections from 10 to 100000.
MAX_CONNECTIONS_RANGE = (10, 100_000)


@dataclasses.dataclass(frozen=True)
class VerifyOptions:
    """What to verify, and how hard; :func:`parse_options` makes one from strings."""

    image: str
    database_image: str = MYSQL_IMAGE
    max_connections: int = 40
    cpus: float = 1.0
    path: str = environment.HEALTH_PATH
    duration: float = 15.0
    concurrency: int | None = None  # None: OVERLOAD_FACTOR x the plan's threads
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    startup_timeout: float = 120.0


def parse_options(
    image: str,
    *,
    database_image: str = MYSQL_IMAGE,
    max_connections: str = "40",
    cpus: str = "1",
    path: str = environment.HEALTH_PATH,
    duration: str = "15",
    concurrency: str | None = None,
    env: Sequence[str] = (),
    host_cpus: int | None = None,
) -> VerifyOptions:
    """Check every option before anything starts; a bad one is one VerifyError line."""
    low, high = MAX_CONNECTIONS_RANGE
    host = host_cpus or os.cpu_count() or 1
    try:
        connections = values.whole(
            "--max-connections", max_connections, low, high, "the server's max_connections"
        )
        limit = values.cpus("--cpus", cpus, high=host)
        seconds = values.number("--duration", duration, 1, 600, "seconds of load")
        clients = (
            None
            if concurrency is None
            else values.whole("--concurrency", concurrency, 1, MAX_CONCURRENCY, "clients at once")
        )
    except ConfigError as error:
        raise VerifyError(str(error)) from None
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise VerifyError(f"--path {path!r}: give a path such as /healthz or /items/?page=2")
    return VerifyOptions(
        image=image,
        database_image=database_image,
        max_connections=connections,
        cpus=limit,
        path=path,
        duration=seconds,
        concurrency=clients,
        environment=_environment(env),
    )


def _environment(pairs: Sequence[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isidentifier():
            raise VerifyError(f"--env {pair!r}: write it as NAME=VALUE")
        environment[name] = value
    return environment
