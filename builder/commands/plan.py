"""Compute gunicorn workers and threads for a CPU limit and a connection budget.

All containers together never open more database connections than the server allows.
Each option defaults to its environment variable (shown in brackets), then to this
machine's cgroup limits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import PlanError
from kitbuild_runtime import capacity

if TYPE_CHECKING:
    from builder.commands._shared import Io


def configure(parser: argparse.ArgumentParser) -> None:
    """The plan's options: one per capacity setting, plus where to read cgroups."""
    for setting in capacity.SETTINGS:
        parser.add_argument(
            setting.flag,
            dest=setting.name,
            metavar="SIZE" if setting.name in {"memory", "worker_memory"} else "N",
            help=f"{setting.help} [{setting.env}]".replace("%", "%%"),
        )
    parser.add_argument(
        "--cgroup-root",
        type=Path,
        metavar="DIR",
        default=capacity.DEFAULT_CGROUP_ROOT,
        help="where the cgroup files are read (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace, io: Io) -> int:
    """Read the settings and the cgroups, plan, print."""
    flags = {setting.name: getattr(args, setting.name) for setting in capacity.SETTINGS}
    settings, sources = capacity.read_settings(flags, io.env)
    if not args.cgroup_root.is_dir():
        raise PlanError(f"--cgroup-root {args.cgroup_root} is not a directory")
    plan = capacity.make_plan(settings, capacity.read_limits(args.cgroup_root), sources)
    io.say(json.dumps(plan.as_dict(), indent=2) if args.json else capacity.format_table(plan))
    return 0
