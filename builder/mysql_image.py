"""kitbuild/mysql: a MySQL-compatible server image made from Debian's MariaDB, no registry.

The image keeps the official ``mysql``/``mariadb`` images' contract (environment variables,
``/docker-entrypoint-initdb.d``, port 3306, two "ready for connections" lines), so tools
written for those, such as testcontainers' ``MySqlContainer``, use it unchanged. It is
built from ``images/mysql/`` on top of the ``mariadb`` base image from ``bases.toml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.service_image import ServiceImage

if TYPE_CHECKING:
    from builder.docker_gateway import DockerGateway

MYSQL = ServiceImage(
    tag="kitbuild/mysql:latest",
    base_kind="mariadb",
    directory="mysql",
    files=("docker-entrypoint.sh", "healthcheck.sh"),
    digest_label="io.kitbuild.mysql-digest",
)

#: The tag kitbuild gives its MySQL-compatible server image.
MYSQL_IMAGE = MYSQL.tag


def ensure_mysql_image(gateway: DockerGateway, **options: Any) -> str:
    """Return MYSQL_IMAGE, made or remade when missing or stale (see ServiceImage.ensure)."""
    return MYSQL.ensure(gateway, **options)
