"""MySQL and MariaDB: how verify starts the server through the gateway, and waits for it.

The image is kitbuild/mysql (made by :mod:`builder.image.service_images`) or an official
``mysql`` or ``mariadb`` image; they keep one contract: the accounts come from the
environment, options are the command, the server listens on 3306 and logs "ready for
connections" twice (the init server, then the real one). testcontainers'
``MySqlContainer`` knows that contract, so it sets the accounts and waits.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.engine import Container, ContainerSpec, DockerGateway


def start(
    gateway: DockerGateway,
    spec: ContainerSpec,
    *,
    max_connections: int,
    user: str,
    password: str,
    root_password: str,
    database: str,
) -> Container:
    """Start the server at ``max_connections``; return it once it takes connections.

    ``spec`` wires it (image, labels, network, aliases); its command is the server's
    options, set here. ``user`` gets ``database``; port 3306 is published on the host.
    """
    from testcontainers.community.mysql import MySqlContainer  # noqa: PLC0415 - slow import

    server = MySqlContainer(
        spec.image,
        username=user,
        password=password,
        root_password=root_password,
        dbname=database,
    )
    command = [f"--max-connections={max_connections}"]
    return gateway.start_testcontainer(dataclasses.replace(spec, command=command), server)
