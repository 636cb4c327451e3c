"""kitbuild/nginx's build context (builder/image/service_images.py), rendered without an engine."""

from __future__ import annotations

from pathlib import Path

from builder import cli
from builder.image import bases
from builder.image.service_images import NGINX


def test_context_has_the_dockerfile_on_the_nginx_base_and_every_file(tmp_path: Path) -> None:
    """The context holds the Dockerfile (FROM the nginx base, digest-labelled) and its files."""
    base_image = bases.image_reference("nginx", "bookworm")
    NGINX.write_context(tmp_path, base_image, "bookworm")
    dockerfile = (tmp_path / "Dockerfile").read_text()

    assert "kitbuild/nginx-base:bookworm" == base_image
    assert f"FROM {base_image}\n" in dockerfile
    assert f"{NGINX.digest_label}=" in dockerfile
    assert {"Dockerfile", *NGINX.files} == {path.name for path in tmp_path.iterdir()}
    assert ["nginx"] == bases.packages("nginx")


def test_the_digest_follows_the_base() -> None:
    """A different base or suite gives a different digest, so a stale image is rebuilt."""
    one = NGINX.digest("kitbuild/nginx-base:bookworm", "bookworm")

    assert one == NGINX.digest("kitbuild/nginx-base:bookworm", "bookworm")
    assert one != NGINX.digest("kitbuild/nginx-base:trixie", "trixie")


def test_the_site_serves_static_from_the_volume_and_proxies_to_web() -> None:
    """The site config serves /static/ from /srv/static and passes the rest to web:8000."""
    site = (Path(__file__).parent.parent / "images/nginx/kitbuild-site.conf").read_text()

    assert "alias /srv/static/;" in site
    assert "set $web http://web:8000;" in site
    assert "listen 8080" in site


def test_kitbuild_base_can_skip_the_proxy_image() -> None:
    """`kitbuild base --no-proxy` parses: the proxy image is optional."""
    args = cli._parser("base").parse_args(["base", "--no-proxy", "--no-mysql"])

    assert (True, True) == (args.no_proxy, args.no_mysql)
