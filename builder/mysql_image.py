"""kitbuild/mysql: a MySQL-compatible server image made from Debian's MariaDB, no registry.

The image keeps the official ``mysql``/``mariadb`` images' contract (environment variables,
``/docker-entrypoint-initdb.d``, port 3306, two "ready for connections" lines), so tools
written for those, such as testcontainers' ``MySqlContainer``, use it unchanged. It is
built from ``images/mysql/`` on top of the ``mariadb`` base image from ``bases.toml``.
"""

from __future__ import annotations

import hashlib
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from builder import base
from builder.errors import KitError
from builder.templates import render_template

if TYPE_CHECKING:
    from collections.abc import Callable

    from builder.docker_gateway import DockerGateway

#: The tag kitbuild gives its MySQL-compatible server image.
MYSQL_IMAGE = "kitbuild/mysql:latest"

#: The base image kind (in images/base/bases.toml) the server image starts from.
BASE_KIND = "mariadb"

#: The label holding a digest of everything the image was built from.
DIGEST_LABEL = "io.kitbuild.mysql-digest"

_SCRIPTS = ("docker-entrypoint.sh", "healthcheck.sh")
_MYSQL = resources.files("builder.images").joinpath("mysql")


class MysqlImageError(KitError):
    """kitbuild/mysql cannot be made."""


def _digest(base_image: str, suite: str) -> str:
    """A digest of the template, the scripts and the base, to notice a stale image."""
    sha = hashlib.sha256(f"{base_image}\n{suite}\n".encode())
    for name in ("Dockerfile.j2", *_SCRIPTS):
        sha.update(name.encode() + b"\0" + _MYSQL.joinpath(name).read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def render_dockerfile(base_image: str, suite: str, digest: str) -> str:
    """Render images/mysql/Dockerfile.j2 on ``base_image``, labelled with ``digest``."""
    return render_template(
        "mysql/Dockerfile.j2",
        base_image=base_image,
        suite=suite,
        digest_label=DIGEST_LABEL,
        digest=digest,
    )


def write_context(context: Path, base_image: str, suite: str) -> None:
    """Write the Dockerfile and the two scripts (executable) into ``context``."""
    digest = _digest(base_image, suite)
    (context / "Dockerfile").write_text(render_dockerfile(base_image, suite, digest))
    for name in _SCRIPTS:
        script = context / name
        script.write_bytes(_MYSQL.joinpath(name).read_bytes())
        script.chmod(0o755)


def ensure_mysql_image(
    gateway: DockerGateway,
    *,
    suite: str = "bookworm",
    force: bool = False,
    runner: base.Runner = base.run_command,
    say: Callable[[str], None] = print,
) -> str:
    """Return MYSQL_IMAGE, building it (and its mariadb base, if missing) when needed.

    An existing image is kept unless ``force`` is set or it was built from other files
    (its digest label differs); the base image is only ever made when it is missing.
    """
    if suite not in {known.name for known in base.suites()}:
        raise MysqlImageError(f"unknown Debian suite {suite!r} for {MYSQL_IMAGE}")
    base_image = base.image_reference(BASE_KIND, suite)
    if not gateway.image_exists(base_image):
        base.make_base_image(BASE_KIND, suite, gateway, runner=runner, say=say)
    digest = _digest(base_image, suite)
    if (
        not force
        and gateway.image_exists(MYSQL_IMAGE)
        and gateway.summary(MYSQL_IMAGE).labels.get(DIGEST_LABEL) == digest
    ):
        return MYSQL_IMAGE
    say(f"kitbuild: building {MYSQL_IMAGE} on {base_image}")
    with tempfile.TemporaryDirectory(prefix="kitbuild-mysql-") as scratch:
        context = Path(scratch)
        write_context(context, base_image, suite)
        gateway.build(context, MYSQL_IMAGE, network_mode="none")
    return MYSQL_IMAGE
