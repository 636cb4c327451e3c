"""Bad runtime configuration stops the container at once: one line naming the variable."""

from __future__ import annotations

import pytest

from builder.engine import ContainerSpec, DockerGateway
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

DB = {
    "DATABASE_HOST": "db.invalid",
    "DATABASE_NAME": "mysite",
    "DATABASE_USER": "mysite",
    "DATABASE_WAIT_TIMEOUT": "2",
}


CASES = [
    ({**DB, "DATABASE_MAX_CONNECTIONS": "abc"}, [], "DATABASE_MAX_CONNECTIONS='abc'"),
    ({**DB, "DATABASE_MAX_CONNECTIONS": "-1"}, [], "DATABASE_MAX_CONNECTIONS='-1'"),
    ({**DB, "DATABASE_MAX_CONNECTIONS": "0"}, [], "DATABASE_MAX_CONNECTIONS='0'"),
    (
        {**DB, "DATABASE_MAX_CONNECTIONS": "20", "DATABASE_RESERVED_CONNECTIONS": "20"},
        [],
        "DATABASE_RESERVED_CONNECTIONS=20 must be below DATABASE_MAX_CONNECTIONS=20",
    ),
    ({**DB, "PORT": "99999"}, [], "PORT='99999'"),
    ({**DB, "WEB_CONCURRENCY": "x"}, [], "WEB_CONCURRENCY='x'"),
    ({}, [], "no database configured"),
    ({"DATABASE_URL": "mysql//broken"}, [], "DATABASE_URL must look like mysql://"),
    ({**DB, "DATABASE_PASSWORD_FILE": "/run/secrets/nope"}, [], "DATABASE_PASSWORD_FILE="),
    ({**DB, "TLS_CERT_PATH": "/etc/hostname"}, [], "TLS_KEY_PATH is not set"),
    (
        {**DB, "DATABASE_MAX_CONNECTIONS": "12", "KIT_REPLICAS": "10"},
        [],
        "budget too small",
    ),
    (DB, [], "database db.invalid:3306/mysite not reachable after 2 s"),
    (DB, ["migrate"], "database db.invalid:3306/mysite not reachable after 2 s"),
    ({"KIT_CPUS": "lots"}, ["plan"], "KIT_CPUS='lots'"),
    ({**DB, "KIT_MIGRATION_WAIT_TIMEOUT": "soon"}, [], "KIT_MIGRATION_WAIT_TIMEOUT='soon'"),
    ({**DB, "KIT_OVERCOMMIT": "maybe"}, [], "KIT_OVERCOMMIT='maybe' is not an action"),
    (
        {**DB, "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"},
        [],
        "SECURE_PROXY_SSL_HEADER='HTTP_X_FORWARDED_PROTO' must be HEADER,VALUE",
    ),
]


@pytest.mark.parametrize(("env", "command", "message"), CASES)
def test_bad_configuration_exits_non_zero_with_one_line(
    gateway: DockerGateway,
    mysite_image: Built,
    env: dict[str, str],
    command: list[str],
    message: str,
) -> None:
    """The container exits 1 within seconds, its only output one line, no traceback."""
    spec = ContainerSpec(mysite_image.tag, command=command or None, environment=env, network="none")
    container = gateway.start(spec)
    try:
        status = container.wait(timeout=60)
        stderr = container.logs(stdout=False)
        stdout = container.logs(stderr=False)
    finally:
        container.remove()

    assert 1 == status
    assert stderr.startswith("kitbuild: error: ")
    assert message in stderr
    assert 1 == stderr.count("\n")
    assert "" == stdout
