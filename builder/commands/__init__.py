"""kitbuild's commands: this table lists them, one module each holds the command.

A command's module has ``configure(parser)`` and ``run(args, io) -> int``, and its
docstring is the command's ``--help`` description. The CLI imports only the module of the
command being run, so ``kitbuild --version`` and ``kitbuild --help`` import none of them
(and none of Docker's SDK, Jinja2 or uv's helpers with them).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from builder.commands._shared import Command


@dataclasses.dataclass(frozen=True)
class CommandEntry:
    """A command by name: its one-line summary for ``--help``, and where its module is."""

    name: str
    summary: str
    module: str

    def load(self) -> Command:
        """The command's module, imported now."""
        module: Command = importlib.import_module(self.module)
        return module


#: The commands in the order ``kitbuild --help`` lists them.
COMMANDS: dict[str, CommandEntry] = {
    entry.name: entry
    for entry in (
        CommandEntry(
            "plan",
            "compute gunicorn workers and threads for a CPU limit and a DB connection budget",
            "builder.commands.plan",
        ),
        CommandEntry(
            "build",
            "build a production image of a Django project (the default command)",
            "builder.commands.build",
        ),
        CommandEntry(
            "base",
            "make kitbuild's base images from Debian packages (mmdebstrap + docker import)",
            "builder.commands.base",
        ),
        CommandEntry(
            "verify",
            "prove an image keeps its connection budget under overload, against a real server",
            "builder.commands.verify",
        ),
        CommandEntry(
            "deploy",
            "render a deployment's env file for an orchestrator (swarm, kubernetes)",
            "builder.commands.deploy",
        ),
        CommandEntry(
            "cache",
            "show or empty the cache of fetched dependencies (cache clear)",
            "builder.commands.cache",
        ),
    )
}

#: ``kitbuild mysite`` means ``kitbuild build mysite``.
DEFAULT = "build"
