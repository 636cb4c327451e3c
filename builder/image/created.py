"""When an image was made, for ``org.opencontainers.image.created``.

The value decides where the label goes in the Dockerfile. A value the source fixes
(``SOURCE_DATE_EPOCH``, else the project's last git commit) does not change when only the
working tree does, so its LABEL step sits before the code and stays cached. The build time
changes on every build: its LABEL is the last step, so it never invalidates a cached layer.
"""

from __future__ import annotations

import dataclasses
import datetime
import subprocess
from typing import TYPE_CHECKING

from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path


def run_git(argv: Sequence[str], cwd: Path) -> str | None:
    """Run ``git argv`` in ``cwd``: its stdout, or None (no git, not a repository, an error)."""
    try:
        result = subprocess.run(
            ["git", *argv], cwd=cwd, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


@dataclasses.dataclass(frozen=True)
class Created:
    """The image's creation time and where it came from."""

    timestamp: str  # RFC 3339, UTC, e.g. 2026-12-03T17:00:00Z
    source: str  # "SOURCE_DATE_EPOCH", "git" or "build time"

    @property
    def from_source(self) -> bool:
        """Whether the value is fixed by the source (so it may precede the code)."""
        return self.source != "build time"


def image_created(
    project_root: Path,
    env: Mapping[str, str],
    *,
    git: Callable[[Sequence[str], Path], str | None] = run_git,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> Created:
    """``SOURCE_DATE_EPOCH``, else the last commit touching the project, else now."""
    epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise KitError(
                f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds since 1970; "
                "set it to e.g. $(git log -1 --format=%ct) or unset it"
            )
        return Created(_stamp(int(epoch)), "SOURCE_DATE_EPOCH")
    # Only commits that touch the project's directory count (a project in a monorepo).
    committed = (git(["log", "-1", "--format=%ct", "--", "."], project_root) or "").strip()
    if committed.isdigit():
        return Created(_stamp(int(committed)), "git")
    return Created(now().strftime("%Y-%m-%dT%H:%M:%SZ"), "build time")


def _stamp(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
