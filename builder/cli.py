"""The ``kitbuild`` root: lists the commands (:mod:`builder.commands`), returns exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, NoReturn

from builder import __version__
from builder.commands import COMMANDS, DEFAULT
from builder.commands._shared import Io
from builder.errors import KitError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class _Parser(argparse.ArgumentParser):
    # argparse would print the whole usage and call sys.exit(2); we want one line and a code.
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    """The parser; only the ``chosen`` command's module is imported to configure its options."""
    parser = _Parser(
        prog="kitbuild",
        description="Build production images of Django projects, sized to their container.",
    )
    parser.add_argument("--version", action="version", version=f"kitbuild {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name, entry in COMMANDS.items():
        if name == chosen:
            module = entry.load()
            module.configure(
                commands.add_parser(name, help=entry.summary, description=module.__doc__)
            )
        else:
            commands.add_parser(name, help=entry.summary)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """Run kitbuild with ``argv``; return the exit code (0 ok, 1 bad input, 2 usage, 130)."""
    io = Io(stdout or sys.stdout, stderr or sys.stderr, os.environ if env is None else env)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in COMMANDS and not arguments[0].startswith("-"):
        if not Path(arguments[0]).exists():
            io.progress(
                f"kitbuild: error: {arguments[0]!r} is neither a command "
                f"({', '.join(COMMANDS)}) nor a directory"
            )
            return 1
        arguments.insert(0, DEFAULT)  # `kitbuild mysite` builds mysite
    # The command is the first word that is not an option (kitbuild's own options take none).
    chosen = next((word for word in arguments if not word.startswith("-")), None)
    try:
        args = _parser(chosen).parse_args(arguments)
        return COMMANDS[args.command].load().run(args, io)
    except UsageError as error:
        io.progress(str(error))
        return 2
    except KitError as error:
        io.progress(f"kitbuild: error: {error}")
        return 1
    except KeyboardInterrupt:
        io.progress("kitbuild: interrupted")
        return 130


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main(sys.argv[1:]))
