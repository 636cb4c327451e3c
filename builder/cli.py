"""The ``kitbuild`` command line: ``main(argv)`` returns an exit code, nothing else exits."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from builder import __version__, capacity

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


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
    return parser


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


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run kitbuild with ``argv``; return the process exit code (0 ok, 1 bad input, 2 usage)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = _build_parser().parse_args(argv)
    except UsageError as error:
        err.write(f"{error}\n")
        return 2
    try:
        return _run_plan(args, os.environ if env is None else env, out)
    except capacity.PlanError as error:
        err.write(f"kitbuild: error: {error}\n")
        return 1


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))
