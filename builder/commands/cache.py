"""Manage kitbuild's cache of fetched wheelhouses and base-image probes.

It lives in $XDG_CACHE_HOME/kitbuild (default ~/.cache/kitbuild). `kitbuild cache clear`
empties it: the next build fetches its dependencies from the index again (for example to
pick up a newer release that an unpinned requirement allows).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from builder.image.cache import cache_root, clear

if TYPE_CHECKING:
    from builder.commands._shared import Io


def configure(parser: argparse.ArgumentParser) -> None:
    """``cache path`` and ``cache clear``."""
    parser.add_argument(
        "action",
        choices=("clear", "path"),
        help="clear: empty the cache; path: print where it is",
    )


def run(args: argparse.Namespace, io: Io) -> int:
    """Print the cache's directory, or empty it and say how much it held."""
    root = cache_root(io.env)
    if args.action == "path":
        io.say(str(root))
        return 0
    entries, size = clear(root)
    io.say(f"kitbuild: emptied {root} ({entries} entries, {size / 1e6:.1f} MB)")
    return 0
