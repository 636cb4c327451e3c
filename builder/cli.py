"""The ``kitbuild`` command line: ``main(argv)`` returns an exit code, nothing else exits."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from builder import __version__, base, capacity, mysql_image, nginx_image, verify
from builder.build import BuildOptions, DockerBuild, RenderOnly, build_project
from builder.docker_gateway import DockerGateway
from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence


class UsageError(Exception):
    """A command line argparse rejected; the message is one line."""


class _Parser(argparse.ArgumentParser):
    # argparse would print the whole usage and call sys.exit(2); we want one line and a code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kitbuild",
        description="Build production images of Django projects, sized to their container.",
    )
    parser.add_argument("--version", action="version", version=f"kitbuild {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    plan = commands.add_parser(
        "plan",
        help="compute gunicorn workers and threads for a CPU limit and a DB connection budget",
        description=(
            "Compute gunicorn workers and threads so that all containers together never open "
            "more database connections than the server allows. Each option defaults to its "
            "environment variable (shown in brackets), then to this machine's cgroup limits."
        ),
    )
    for setting in capacity.SETTINGS:
        plan.add_argument(
            setting.flag,
            dest=setting.name,
            metavar="N" if setting.name not in {"memory", "worker_memory"} else "SIZE",
            help=f"{setting.help} [{setting.env}]".replace("%", "%%"),
        )
    plan.add_argument(
        "--cgroup-root",
        type=Path,
        metavar="DIR",
        default=capacity.DEFAULT_CGROUP_ROOT,
        help="where the cgroup files are read (default: %(default)s)",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")

    build = commands.add_parser(
        "build",
        help="build a production image of a Django project (the default command)",
        description=(
            "Build a production image of the Django project in PROJECT, without network "
            "access during the build. `kitbuild PROJECT` is short for `kitbuild build PROJECT`."
        ),
    )
    build.add_argument("project", type=Path, metavar="PROJECT", help="the project's directory")
    build.add_argument("--tag", "-t", help="image tag (default: <directory name>:latest)")
    build.add_argument(
        "--settings", metavar="MODULE", help="settings module (default: manage.py's)"
    )
    build.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="requirements file (default: requirements.txt, else pyproject.toml)",
    )
    build.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="a Debian-like image with python3 and venv to build on, instead of kitbuild's own",
    )
    build.add_argument(
        "--render-only",
        type=Path,
        metavar="DIR",
        help="write the complete build context to DIR (a new directory) and build nothing",
    )
    build.add_argument("--quiet", "-q", action="store_true", help="do not stream the build output")
    build.add_argument("--no-cache", action="store_true", help="rebuild every layer")

    base_command = commands.add_parser(
        "base",
        help="make kitbuild's base images from Debian packages (mmdebstrap + docker import)",
        description="Make kitbuild's base images locally; no registry is needed.",
    )
    base_command.add_argument(
        "--suite",
        choices=[*(suite.name for suite in base.suites()), "all"],
        default="all",
        help="which Debian suite (default: all)",
    )
    base_command.add_argument(
        "--force", action="store_true", help="remake images that already exist"
    )
    base_command.add_argument(
        "--no-mysql",
        action="store_true",
        help=f"skip {mysql_image.MYSQL_IMAGE}, the MariaDB server image used by tests",
    )
    base_command.add_argument(
        "--no-proxy",
        action="store_true",
        help=f"skip {nginx_image.NGINX_IMAGE}, the nginx proxy of compose.yaml",
    )
    verify_command = commands.add_parser(
        "verify",
        help="prove an image keeps its connection budget under overload, against a real server",
        description=(
            "Start a MySQL-compatible server at --max-connections, migrate, start IMAGE with "
            "a CPU limit, overload it, and check that it never opened more connections than "
            "its budget and answered every request. Exit 0 when it did, 3 when it did not, "
            "1 when the run could not be made. Everything started is removed afterwards."
        ),
    )
    verify_command.add_argument("image", metavar="IMAGE", help="an image built by kitbuild")
    verify_command.add_argument(
        "--database-image",
        metavar="IMAGE",
        default=mysql_image.MYSQL_IMAGE,
        help="the server image, e.g. mysql:8.4 (default: %(default)s, made when missing)",
    )
    verify_command.add_argument(
        "--max-connections", metavar="N", default="40", help="the server's limit (default: 40)"
    )
    verify_command.add_argument(
        "--cpus", metavar="N", default="1", help="the app's CPU limit (default: 1)"
    )
    verify_command.add_argument(
        "--path",
        default="/healthz",
        help="a page that uses the database (default: /healthz, which runs SELECT 1)",
    )
    verify_command.add_argument(
        "--duration", metavar="SECONDS", default="15", help="load duration (default: 15)"
    )
    verify_command.add_argument(
        "--concurrency",
        metavar="N",
        help=f"clients at once (default: {verify.OVERLOAD_FACTOR} x the plan's threads)",
    )
    verify_command.add_argument(
        "--env",
        "-e",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the app (repeatable), e.g. a setting your project needs",
    )
    verify_command.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


COMMANDS = ("plan", "build", "base", "verify")


def _run_plan(args: argparse.Namespace, env: Mapping[str, str], out: IO[str]) -> int:
    flags = {setting.name: getattr(args, setting.name) for setting in capacity.SETTINGS}
    settings, sources = capacity.read_settings(flags, env)
    if not args.cgroup_root.is_dir():
        raise capacity.PlanError(f"--cgroup-root {args.cgroup_root} is not a directory")
    limits = capacity.read_limits(args.cgroup_root)
    plan = capacity.make_plan(settings, limits, sources)
    if args.json:
        out.write(json.dumps(plan.as_dict(), indent=2) + "\n")
    else:
        out.write(capacity.format_table(plan) + "\n")
    return 0


def _run_build(args: argparse.Namespace, out: IO[str]) -> int:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    def stream(text: str) -> None:
        if not args.quiet:
            out.write(text)
            out.flush()

    connections: list[DockerGateway] = []

    def connect() -> DockerGateway:
        connections.append(DockerGateway.connect())
        return connections[-1]

    delivery: RenderOnly | DockerBuild
    if args.render_only is not None:
        delivery = RenderOnly(args.render_only, connect)
    else:
        delivery = DockerBuild(connect, on_output=stream, say=say, nocache=args.no_cache)
    options = BuildOptions(
        project_dir=args.project,
        tag=args.tag,
        settings=args.settings,
        requirements=args.requirements,
        base_image=args.base_image,
    )
    try:
        result = build_project(options, delivery, say=say)
    finally:
        for gateway in connections:
            gateway.close()
    if result.context is not None:
        say(f"kitbuild: wrote the build context for {result.tag} to {result.context}")
    else:
        size = f"{(result.size or 0) / 1e6:.0f} MB"  # docker's own unit for image sizes
        say(f"kitbuild: built {result.tag} ({result.image_id}, {size})")
    return 0


def _run_base(args: argparse.Namespace, out: IO[str]) -> int:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    gateway = DockerGateway.connect()
    names = [suite.name for suite in base.suites()] if args.suite == "all" else [args.suite]
    try:
        for suite in names:
            for kind in ("build", "runtime"):
                reference = base.image_reference(kind, suite)
                if gateway.image_exists(reference) and not args.force:
                    say(f"kitbuild: {reference} is already here (--force remakes it)")
                    continue
                base.make_base_image(kind, suite, gateway, say=say)
                say(f"kitbuild: made {reference}")
        if not args.no_mysql:
            say(f"kitbuild: {mysql_image.ensure_mysql_image(gateway, say=say)} is ready")
        if not args.no_proxy:
            say(f"kitbuild: {nginx_image.ensure_nginx_image(gateway, say=say)} is ready")
    finally:
        gateway.close()
    return 0


def _run_verify(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    options = verify.parse_options(
        args.image,
        database_image=args.database_image,
        max_connections=args.max_connections,
        cpus=args.cpus,
        path=args.path,
        duration=args.duration,
        concurrency=args.concurrency,
        env=args.env,
    )

    def say(line: str) -> None:  # progress goes to stderr, so --json output stays clean
        err.write(line + "\n")
        err.flush()

    gateway = DockerGateway.connect()
    try:
        with _sigterm_as_interrupt():
            report = verify.run_verify(options, gateway, say=say)
    finally:
        gateway.close()
    if args.json:
        out.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        out.write(report.as_text() + "\n")
    return 0 if report.verdict.passed else verify.EXIT_PROMISE_FAILED


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt, so a stopped run removes its containers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps that.
    numbers = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, interrupt) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(  # noqa: PLR0911 - one return per command and per kind of failure
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run kitbuild with ``argv``; return the process exit code (0 ok, 1 bad input, 2 usage)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in COMMANDS and not arguments[0].startswith("-"):
        if not Path(arguments[0]).exists():
            err.write(
                f"kitbuild: error: {arguments[0]!r} is neither a command "
                f"({', '.join(COMMANDS)}) nor a directory\n"
            )
            return 1
        arguments.insert(0, "build")  # `kitbuild mysite` builds mysite
    try:
        args = _build_parser().parse_args(arguments)
    except UsageError as error:
        err.write(f"{error}\n")
        return 2
    try:
        if args.command == "build":
            return _run_build(args, out)
        if args.command == "base":
            return _run_base(args, out)
        if args.command == "verify":
            return _run_verify(args, out, err)
        return _run_plan(args, os.environ if env is None else env, out)
    except (capacity.PlanError, KitError) as error:
        err.write(f"kitbuild: error: {error}\n")
        return 1
    except KeyboardInterrupt:
        err.write("kitbuild: interrupted\n")
        return 130


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))
