"""Render a deployment, described once by its env file, for an orchestrator.

`kitbuild deploy swarm --env-file deploy/production.env -o stack.yaml` writes a stack file
for `docker stack deploy`; `kitbuild deploy kubernetes --env-file ... -o DIR` writes a
directory for `kubectl apply -k`. The numbers in them come from the plan every container
will compute, and an env file whose numbers the connection budget cannot hold is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from builder.deploy import description, targets
from builder.errors import DeployError

if TYPE_CHECKING:
    from builder.commands._shared import Io


def configure(parser: argparse.ArgumentParser) -> None:
    """The target, the env file and where the files go."""
    parser.add_argument("target", metavar="TARGET", help="the engine: swarm or kubernetes")
    parser.add_argument(
        "--env-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="the deployment's env file, the one compose reads (e.g. deploy/production.env)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="the file (swarm; default: stdout) or directory (kubernetes) to write",
    )


def run(args: argparse.Namespace, io: Io) -> int:
    """Check the target and the env file, render, write whole or not at all."""
    target = targets.TARGETS.get(args.target)
    if target is None:
        known = ", ".join(sorted(targets.TARGETS)) or "none yet"
        raise DeployError(f"unknown deploy target {args.target!r}: use one of {known}")
    rendered = targets.render(target, description.load(args.env_file))
    where = rendered.write(args.output, io.out)
    for note in rendered.notes:
        io.progress(f"kitbuild: note: {note}")
    if where != "stdout":
        io.progress(f"kitbuild: wrote the {target.NAME} deployment to {where}")
    return 0
