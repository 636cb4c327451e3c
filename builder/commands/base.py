"""Make kitbuild's base and service images locally; no registry is needed.

The bases are Debian root filesystems made with mmdebstrap and imported into the engine.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from builder.engine import DockerGateway
from builder.image import bases
from builder.image.service_images import MYSQL, NGINX

if TYPE_CHECKING:
    from builder.commands._shared import Io


def configure(parser: argparse.ArgumentParser) -> None:
    """Which suites and service images to make."""
    parser.add_argument(
        "--suite",
        choices=[*(suite.name for suite in bases.suites()), "all"],
        default="all",
        help="which Debian suite (default: all)",
    )
    parser.add_argument("--force", action="store_true", help="remake images that already exist")
    parser.add_argument(
        "--no-mysql",
        action="store_true",
        help=f"skip {MYSQL.tag}, the MariaDB server image used by tests and verify",
    )
    parser.add_argument(
        "--no-proxy",
        action="store_true",
        help=f"skip {NGINX.tag}, the proxy of compose.yaml",
    )


def run(args: argparse.Namespace, io: Io) -> int:
    """Make what is missing (or everything, with --force)."""
    names = [suite.name for suite in bases.suites()] if args.suite == "all" else [args.suite]
    gateway = DockerGateway.connect()
    try:
        for suite in names:
            bases.ensure_suite(
                suite, gateway, force=args.force, quiet_when_present=False, say=io.say
            )
        # Service images are remade when their files change (a digest label), not by --force.
        for image, skipped in ((MYSQL, args.no_mysql), (NGINX, args.no_proxy)):
            if not skipped:
                io.say(f"kitbuild: {image.ensure(gateway, say=io.say)} is ready")
    finally:
        gateway.close()
    return 0
