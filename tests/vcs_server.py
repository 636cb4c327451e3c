"""A git repository and a package index the tests serve themselves, on 127.0.0.1.

The repository holds tests/fixtures/vcs/tinypkg, whose build backend is in its own tree, so
it builds with nothing from an index. It is served over git's dumb HTTP protocol (a bare
repository after ``git update-server-info``, read by python's http.server).
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

PACKAGE = Path(__file__).parent / "fixtures" / "vcs" / "tinypkg"
#: Nothing listens there: an index or repository that cannot be reached.
DEAD = "http://127.0.0.1:9"


@dataclasses.dataclass(frozen=True)
class Served:
    """A directory served over HTTP, and the URL it is served at."""

    root: Path
    url: str


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Say nothing: the test's output is the test's."""


_IDENTITY = ["-c", "user.name=kitbuild tests", "-c", "user.email=tests@kitbuild.invalid"]


def serve(root: Path) -> Iterator[Served]:
    """Serve ``root`` on a free port of 127.0.0.1 until the generator is closed."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(root, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def git(*args: str, cwd: Path) -> str:
    """Run git in ``cwd``; its output."""
    result = subprocess.run(
        ["git", *_IDENTITY, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def make_repository(served: Served, scratch: Path, name: str = "tinypkg.git") -> str:
    """Put tinypkg in a bare repository under the served root, tagged v0.3; its commit."""
    work = scratch / "tinypkg-work"
    shutil.copytree(PACKAGE, work)
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "tinypkg 0.3", cwd=work)
    git("tag", "v0.3", cwd=work)
    bare = served.root / name
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=scratch)
    git("update-server-info", cwd=bare)
    return git("rev-parse", "HEAD", cwd=work)
