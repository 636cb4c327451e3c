"""Build a production image of the Django project in PROJECT.

The build has no network access. `kitbuild PROJECT` is short for `kitbuild build PROJECT`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from builder.engine import LazyGateway
from builder.errors import KitError
from builder.image import wheelhouse
from builder.image.cache import ProbeCache, ResolveCache, WheelhouseCache, cache_root
from builder.image.config import KitConfig, checked, parse_build_file, parse_env_assignment
from builder.image.context import SBOM_PATH
from builder.image.pipeline import (
    BuildOptions,
    ContextDirectory,
    EngineBases,
    EngineBuild,
    NamedBases,
    build_project,
)

if TYPE_CHECKING:
    from builder.commands._shared import Io
    from builder.image.pipeline import BaseSource, Publisher


def configure(parser: argparse.ArgumentParser) -> None:
    """The build's options."""
    parser.add_argument("project", type=Path, metavar="PROJECT", help="the project's directory")
    parser.add_argument("--tag", "-t", help="image tag (default: <directory name>:latest)")
    parser.add_argument(
        "--settings", metavar="MODULE", help="settings module (default: manage.py's)"
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="the dependency file to read: a lock, a requirements file or pyproject.toml "
        "(default: a lock, else requirements.txt, else pyproject.toml)",
    )
    parser.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="a Debian-like image with python3 and venv to build on, instead of kitbuild's own",
    )
    parser.add_argument(
        "--render-only",
        type=Path,
        metavar="DIR",
        help="write the complete build context to DIR (a new directory) and build nothing",
    )
    parser.add_argument(
        "--sbom",
        type=Path,
        metavar="FILE",
        help=f"also write the image's CycloneDX JSON SBOM (in the image: {SBOM_PATH}) to FILE",
    )
    # The flags below say what [tool.kitbuild] in pyproject.toml says; a flag wins over
    # the table, and list flags add to its lists.
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="NAME",
        help="also install this optional dependency group, extra or Pipfile category",
    )
    parser.add_argument(
        "--build-command",
        action="append",
        default=[],
        metavar="CMD",
        help="run this shell command in the build after collectstatic, in manage.py's directory",
    )
    parser.add_argument(
        "--build-package",
        action="append",
        default=[],
        metavar="PKG",
        help="a Debian package the build stage needs (e.g. libpq-dev)",
    )
    parser.add_argument(
        "--runtime-package",
        action="append",
        default=[],
        metavar="PKG",
        help="a Debian package the running image needs (e.g. libpq5)",
    )
    parser.add_argument(
        "--build-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable for collectstatic and the build commands only",
    )
    parser.add_argument(
        "--build-file",
        action="append",
        default=[],
        metavar="SRC:DEST",
        help="put file SRC at DEST (relative to manage.py's directory, or absolute) for the "
        "build steps only; neither it nor --build-env values reach the image's layers or history",
    )
    parser.add_argument(
        "--collectstatic",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run collectstatic in the build (default: when the settings set STATIC_ROOT)",
    )
    parser.add_argument(
        "--suite",
        metavar="NAME",
        help="the Debian suite of kitbuild's bases: bookworm (Python 3.11) or trixie (3.13); "
        "default: the oldest that runs the project",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="do not stream the build output")
    parser.add_argument("--no-cache", action="store_true", help="rebuild every layer")


def flag_config(args: argparse.Namespace) -> KitConfig:
    """The [tool.kitbuild] settings given as flags."""
    return checked(
        KitConfig(
            groups=tuple(args.group),
            build_commands=tuple(args.build_command),
            build_packages=tuple(args.build_package),
            runtime_packages=tuple(args.runtime_package),
            build_env=tuple(parse_env_assignment(item) for item in args.build_env),
            build_files=tuple(
                (str(Path(source).absolute()), dest)
                for source, dest in map(parse_build_file, args.build_file)
            ),
            collectstatic=args.collectstatic,
            suite=args.suite,
        ),
        "the flags",
    )


def run(args: argparse.Namespace, io: Io) -> int:
    """Wire the stages (real engine, or a directory for --render-only) and build."""

    def stream(text: str) -> None:
        if not args.quiet:
            io.out.write(text)
            io.out.flush()

    if args.sbom is not None and args.render_only is not None:
        raise KitError("--sbom needs a built image; leave out --render-only (or build the context)")
    gateway = LazyGateway()
    sources: BaseSource
    publisher: Publisher
    # The wheelhouse and the probe come from kitbuild's cache when their inputs are unchanged.
    root = cache_root(io.env)
    probes = ProbeCache(root, say=io.say)
    fetch = WheelhouseCache(root, say=io.say).wrap(wheelhouse.fetch)
    resolve = ResolveCache(root, say=io.say).wrap(wheelhouse.resolve)
    if args.render_only is not None:
        sources = NamedBases(gateway, probes=probes)
        publisher = ContextDirectory(args.render_only)
    else:
        sources = EngineBases(gateway, say=io.say, probes=probes)
        publisher = EngineBuild(gateway, on_output=stream, nocache=args.no_cache)
    options = BuildOptions(
        project_dir=args.project,
        tag=args.tag,
        settings=args.settings,
        requirements=args.requirements,
        base_image=args.base_image,
        config=flag_config(args),
    )
    try:
        result = build_project(
            options,
            sources=sources,
            publisher=publisher,
            fetch=fetch,
            resolve=resolve,
            say=io.say,
            env=io.env,
        )
        if args.sbom is not None:
            _write_sbom(gateway().read_file(result.tag, SBOM_PATH), args.sbom)
            io.say(f"kitbuild: wrote the SBOM of {result.tag} to {args.sbom}")
    finally:
        gateway.close()
    if result.context is not None:
        io.say(f"kitbuild: wrote the build context for {result.tag} to {result.context}")
    else:
        size = f"{(result.size or 0) / 1e6:.0f} MB"  # docker's own unit for image sizes
        io.say(f"kitbuild: built {result.tag} ({result.image_id}, {size})")
    return 0


def _write_sbom(data: bytes, destination: Path) -> None:
    """Write the file whole: beside it first, then renamed over it."""
    partial = destination.with_name(destination.name + ".partial")
    try:
        partial.write_bytes(data)
        partial.replace(destination)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise KitError(f"cannot write the SBOM to {destination}: {error.strerror}") from None
