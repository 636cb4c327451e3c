"""What a deploy target renders, and how it reaches the disk: whole, or not at all."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

from builder.errors import DeployError

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The file that marks a directory kitbuild wrote, so a new render may replace it.
MARKER = ".kitbuild-deploy"


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The files a target made: one file (a stack file) or a directory of them."""

    files: Mapping[str, str]  # relative path -> text
    directory: bool  # True: ``-o DIR`` is required and gets every file
    notes: tuple[str, ...] = ()  # what the target could not honour, said on stderr

    def write(self, output: Path | None, stdout: IO[str]) -> str:
        """Write to ``output`` (or stdout, for a single file); return where it went."""
        if not self.directory:
            (text,) = self.files.values()
            if output is None:
                stdout.write(text)
                return "stdout"
            _write_file(output, text)
            return str(output)
        if output is None:
            raise DeployError("this target writes a directory: give -o DIR")
        _write_directory(output, self.files)
        return str(output)


def _write_file(path: Path, text: str) -> None:
    """Write next to ``path`` and rename, so a reader never sees half a file."""
    if path.is_dir():
        raise DeployError(f"-o {path} is a directory: name the file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_directory(path: Path, files: Mapping[str, str]) -> None:
    """Write every file into a fresh directory, then put it in place of ``path``.

    ``path`` may not exist, be empty, or be a directory an earlier render wrote (it has the
    marker file); anything else is refused, so no one's files are overwritten.
    """
    if path.exists() and not path.is_dir():
        raise DeployError(f"-o {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (path / MARKER).is_file():
        raise DeployError(
            f"-o {path} holds files kitbuild did not write: name a new or empty directory"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name, text in {
            **files,
            MARKER: "written by kitbuild deploy; safe to replace\n",
        }.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
