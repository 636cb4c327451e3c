"""Images of the services around the app (the MySQL-compatible server, the proxy).

Each one is a Dockerfile template and a few files under ``images/<directory>/``, built on a
base kind from ``bases.toml`` (made by mmdebstrap when missing) with the network off, and
labelled with a digest of everything it was built from, so a stale image is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import ServiceImageError
from builder.image import bases
from builder.templates import render_template

if TYPE_CHECKING:
    from collections.abc import Callable

    from builder.engine import DockerGateway


@dataclasses.dataclass(frozen=True)
class ServiceImage:
    """One service image: its tag, its base kind, and its files under images/."""

    tag: str
    base_kind: str  # a kind in images/base/bases.toml
    directory: str  # under images/, holding Dockerfile.j2 and ``files``
    files: tuple[str, ...]  # copied into the build context as they are
    digest_label: str

    def _source(self, name: str) -> bytes:
        return resources.files("builder.definitions").joinpath(self.directory, name).read_bytes()

    def digest(self, base_image: str, suite: str) -> str:
        """A digest of the template, the files and the base, to notice a stale image."""
        sha = hashlib.sha256(f"{base_image}\n{suite}\n".encode())
        for name in ("Dockerfile.j2", *self.files):
            sha.update(name.encode() + b"\0" + self._source(name) + b"\0")
        return sha.hexdigest()[:16]

    def render_dockerfile(self, base_image: str, suite: str, digest: str) -> str:
        """Render the image's Dockerfile.j2 on ``base_image``, labelled with ``digest``."""
        return render_template(
            f"{self.directory}/Dockerfile.j2",
            base_image=base_image,
            suite=suite,
            digest_label=self.digest_label,
            digest=digest,
        )

    def write_context(self, context: Path, base_image: str, suite: str) -> None:
        """Write the Dockerfile and the files (scripts executable) into ``context``."""
        digest = self.digest(base_image, suite)
        (context / "Dockerfile").write_text(self.render_dockerfile(base_image, suite, digest))
        for name in self.files:
            target = context / name
            target.write_bytes(self._source(name))
            if name.endswith(".sh"):
                target.chmod(0o755)

    def ensure(
        self,
        gateway: DockerGateway,
        *,
        suite: str = "bookworm",
        force: bool = False,
        runner: bases.Runner = bases.run_command,
        say: Callable[[str], None] = print,
    ) -> str:
        """Return the tag, building the image (and its base, if missing) when needed.

        An existing image is kept unless ``force`` is set or it was built from other files
        (its digest label differs); the base image is only ever made when it is missing.
        """
        if suite not in {known.name for known in bases.suites()}:
            raise ServiceImageError(f"unknown Debian suite {suite!r} for {self.tag}")
        base_image = bases.image_reference(self.base_kind, suite)
        if not gateway.image_exists(base_image):
            bases.make_base_image(self.base_kind, suite, gateway, runner=runner, say=say)
        digest = self.digest(base_image, suite)
        if (
            not force
            and gateway.image_exists(self.tag)
            and gateway.summary(self.tag).labels.get(self.digest_label) == digest
        ):
            return self.tag
        say(f"kitbuild: building {self.tag} on {base_image}")
        with tempfile.TemporaryDirectory(prefix=f"kitbuild-{self.directory}-") as scratch:
            context = Path(scratch)
            self.write_context(context, base_image, suite)
            gateway.build(context, self.tag, network_mode="none")
        return self.tag


#: kitbuild/mysql: a MySQL-compatible server from Debian's MariaDB, no registry needed. It
#: keeps the official ``mysql``/``mariadb`` images' contract (environment variables,
#: ``/docker-entrypoint-initdb.d``, port 3306, two "ready for connections" lines), so tools
#: written for those, such as testcontainers' ``MySqlContainer``, use it unchanged.
MYSQL = ServiceImage(
    tag="kitbuild/mysql:latest",
    base_kind="mariadb",
    directory="mysql",
    files=("docker-entrypoint.sh", "healthcheck.sh"),
    digest_label="io.kitbuild.mysql-digest",
)

#: kitbuild/nginx: the deployments' optional proxy, from Debian's nginx package.
NGINX = ServiceImage(
    tag="kitbuild/nginx:latest",
    base_kind="nginx",
    directory="nginx",
    files=("nginx.conf", "kitbuild-site.conf", "healthcheck.sh"),
    digest_label="io.kitbuild.nginx-digest",
)

#: The tags kitbuild gives its service images.
MYSQL_IMAGE = MYSQL.tag
NGINX_IMAGE = NGINX.tag
