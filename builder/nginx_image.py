"""kitbuild/nginx: the compose file's proxy, made from Debian's nginx package, no registry.

It is built from ``images/nginx/`` on top of the ``nginx`` base image from ``bases.toml``,
the way kitbuild/mysql is built on the ``mariadb`` one: mmdebstrap makes the root
filesystem, and a Dockerfile adds the configuration with the network off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.service_image import ServiceImage

if TYPE_CHECKING:
    from builder.docker_gateway import DockerGateway

NGINX = ServiceImage(
    tag="kitbuild/nginx:latest",
    base_kind="nginx",
    directory="nginx",
    files=("nginx.conf", "kitbuild-site.conf", "healthcheck.sh"),
    digest_label="io.kitbuild.nginx-digest",
)

#: The tag kitbuild gives its proxy image.
NGINX_IMAGE = NGINX.tag


def ensure_nginx_image(gateway: DockerGateway, **options: Any) -> str:
    """Return NGINX_IMAGE, made or remade when missing or stale (see ServiceImage.ensure)."""
    return NGINX.ensure(gateway, **options)
