"""Find and read a project's dependencies as the project declares them.

The formats are tried in the order of :data:`FORMATS`: a lock (``uv.lock``,
``poetry.lock``, ``Pipfile.lock``, ``pylock.toml``, beside manage.py or at the project
root), then ``requirements*.txt``, then ``[project] dependencies`` or
``[tool.poetry.dependencies]`` in pyproject.toml. A file named with ``--requirements`` or
``[tool.kitbuild] requirements`` comes first.

:func:`read_declared` finds the file and hands it to its format (one module each, under
:mod:`builder.image.locks`), which parses it into a :class:`Declared`. Which packages the
image gets depends on the image's Python, known only later, so :meth:`Declared.select`
takes the target: a lock (or a requirements file with ``--hash`` lines) gives exact pins,
with markers evaluated for the target; any other source gives requirement lines that the
resolver turns into pins for the target.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from builder.errors import ProjectError
from builder.image.locks import pipenv, poetry, pylock, pyproject, requirements, uv
from builder.image.locks.format import Declared, Selection
from builder.image.locks.pyproject import parse_pyproject_dependencies
from builder.image.locks.requirements import RequirementLine, parse_requirements

if TYPE_CHECKING:
    from pathlib import Path

    from builder.image.locks.format import DependencyFormat

# Declared, Selection and the parsers live with the formats; the rest of kitbuild imports
# them from here, as before the formats had modules.
__all__ = [
    "FORMATS",
    "Declared",
    "RequirementLine",
    "Selection",
    "parse_pyproject_dependencies",
    "parse_requirements",
    "read_declared",
    "read_text",
]

#: Every format kitbuild reads, in the order of preference: each is looked for beside
#: manage.py, then at the project's root, before the next format is.
FORMATS: tuple[DependencyFormat, ...] = (
    uv.FORMAT,
    poetry.FORMAT,
    pipenv.FORMAT,
    pylock.FORMAT,
    requirements.FORMAT,
    pyproject.FORMAT,
)

#: How a file named with --requirements is read when no format claims its name: pip's
#: ``-r`` takes a file of any name.
_NAMED_FALLBACK: DependencyFormat = requirements.FORMAT


def read_declared(root: Path, app_dir: Path, given: Path | None = None) -> Declared:
    """Find the project's dependency declaration, in the order of preference, and read it."""
    if given is not None:
        path = given if given.is_absolute() else root / given
        if not path.is_file():
            raise ProjectError(f"requirements file {given} not found")
        written_in = next((f for f in FORMATS if f.claims(path.name)), _NAMED_FALLBACK)
        return written_in.declare(_ProjectFile(path, root))
    directories = list(dict.fromkeys([app_dir, root]))
    for candidate in FORMATS:
        for directory in directories:
            located = _find(candidate, directory, root)
            if located is None:
                continue
            found = _ProjectFile(located, root)
            if candidate.declares_any(found):
                return candidate.declare(found)
    raise ProjectError(
        f"{root}: no requirements.txt and no [project] dependencies in pyproject.toml; "
        "list the project's packages (at least Django) in requirements.txt"
    )


def _find(candidate: DependencyFormat, directory: Path, root: Path) -> Path | None:
    """The directory's file of that format: its first pattern that one file matches."""
    for pattern in candidate.found_by:
        # A plain name counts only as a file; a pattern's matches count as they are listed.
        if not any(character in pattern for character in "*?["):
            if (directory / pattern).is_file():
                return directory / pattern
            continue
        matches = sorted(directory.glob(pattern))
        if len(matches) > 1:
            listed = ", ".join(_relative(p, root) for p in matches)
            raise ProjectError(
                f"several {candidate.name} files ({listed}); name one with --requirements "
                "FILE or [tool.kitbuild] requirements"
            )
        if matches:
            return matches[0]
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class _ProjectFile:
    """A file on disk as the formats read it (:class:`builder.image.locks.format.ProjectFile`).

    Two are the same file when their resolved paths are, so that includes are read once.
    """

    _path: Path
    _root: Path

    @property
    def source(self) -> str:
        """Its path relative to the project's root."""
        return _relative(self._path, self._root)

    def text(self) -> str:
        """Its text."""
        return read_text(self._path)

    def beside(self, name: str) -> _ProjectFile | None:
        """The file at ``name`` relative to this file's directory, if it is a file."""
        path = self._path.parent / name
        return _ProjectFile(path, self._root) if path.is_file() else None

    def __eq__(self, other: object) -> bool:
        """Same resolved path."""
        return isinstance(other, _ProjectFile) and self._path.resolve() == other._path.resolve()

    def __hash__(self) -> int:
        """That of the resolved path."""
        return hash(self._path.resolve())


def read_text(path: Path) -> str:
    """A project file's text, or ProjectError saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ProjectError(f"cannot read {path}: {reason}") from None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
