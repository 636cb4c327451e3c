"""Where a run's files go (``--report``, ``--junit``): checked before the run, written whole.

The paths are checked before anything starts, so a long run never ends on a path it cannot
write. The files are written to temporary names beside their targets first and renamed
into place only once all of them are complete: a reader never sees half a file, and a
failure leaves none of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import VerifyError

if TYPE_CHECKING:
    from collections.abc import Mapping


def check_destinations(destinations: Mapping[str, Path | None]) -> None:
    """Each option's path names a file kitbuild can create; no two options share one.

    ``destinations`` maps an option (``--report``) to its path, or None when not given.
    """
    seen: dict[Path, str] = {}
    for option, path in destinations.items():
        if path is None:
            continue
        _check_one(option, path)
        resolved = path.resolve()
        if resolved in seen:
            raise VerifyError(
                f"{seen[resolved]} and {option} both name {path}: give each its own file"
            )
        seen[resolved] = option


def _check_one(option: str, path: Path) -> None:
    if path.is_dir():
        raise VerifyError(f"{option} {path} is a directory: name the file to write in it")
    if path.exists() and not os.access(path, os.W_OK):
        raise VerifyError(f"{option} {path} cannot be overwritten: name a file you can write")
    parent = path.parent
    while not parent.exists():  # the missing directories are made when the file is written
        parent = parent.parent
    if not parent.is_dir():
        raise VerifyError(f"{option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VerifyError(f"{option} {path}: cannot write in {parent}; name another place")


def write_files(files: Mapping[Path, str]) -> None:
    """Write every file whole, or none of them (VerifyError naming the one that failed)."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
                # Mode "x" creates it new, with the umask's permissions (mkstemp's are 0600).
                with temporary.open("x", encoding="utf-8") as stream:
                    staged.append((temporary, path))
                    stream.write(text)
            except OSError as error:
                raise VerifyError(f"cannot write {path}: {error.strerror or error}") from None
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
