"""The dependency formats behind one protocol, and the order they are found in (no network)."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import TYPE_CHECKING

import pytest

from builder.image import locks
from builder.image.dependencies import FORMATS, read_declared
from builder.image.locks.format import DependencyFormat

if TYPE_CHECKING:
    from pathlib import Path

    from builder.image.locks.format import ProjectFile

#: The smallest file each format reads, by the format's name. A new format adds its own.
SAMPLES = {
    "uv.lock": (
        'version = 1\nrequires-python = ">=3.11"\n'
        '[[package]]\nname = "app"\nversion = "1.0"\nsource = { virtual = "." }\n'
    ),
    "poetry.lock": '[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\n',
    "Pipfile.lock": '{"_meta": {"requires": {}}, "default": {}, "develop": {}}',
    "pylock.toml": 'lock-version = "1.0"\ncreated-by = "test"\nrequires-python = ">=3.11"\n',
    "requirements": "Django>=5.2,<5.3\n",
    "pyproject.toml": '[project]\nname = "app"\ndependencies = ["Django>=5.2,<5.3"]\n',
}
#: The manifests the locks pair with.
MANIFESTS = {
    "pyproject.toml": SAMPLES["pyproject.toml"],
    "Pipfile": '[packages]\ndjango = "*"\n',
}


def file_named_by(pattern: str) -> str:
    """A file name a found_by pattern matches (``requirements*.txt``: requirements-prod.txt)."""
    return pattern.replace("*", "-prod")


def write_format(directory: Path, written_in: DependencyFormat, pattern: str) -> str:
    """Write the format's sample under a name its pattern matches, with its manifest."""
    name = file_named_by(pattern)
    (directory / name).write_text(SAMPLES[written_in.name])
    if written_in.manifest is not None:
        (directory / written_in.manifest).write_text(MANIFESTS[written_in.manifest])
    return name


@dataclasses.dataclass(frozen=True)
class MemoryFile:
    """A ProjectFile held in memory: what a format needs of the project, and nothing else."""

    name: str  # also what makes two the same file
    files: dict[str, str] = dataclasses.field(compare=False)

    @property
    def source(self) -> str:
        """The file's name, as if at the project's root."""
        return self.name

    def text(self) -> str:
        """The text held for it."""
        return self.files[self.name]

    def beside(self, name: str) -> ProjectFile | None:
        """Another file held, if there is one by that name."""
        return MemoryFile(name, self.files) if name in self.files else None


def format_ids(written_in: DependencyFormat) -> str:
    """Tests are named after the format."""
    return written_in.name


# --------------------------------------------------------------------------- the protocol


@pytest.mark.parametrize("written_in", FORMATS, ids=format_ids)
def test_every_registered_format_satisfies_the_protocol(written_in: DependencyFormat) -> None:
    """Each format has every member of DependencyFormat, is found by a file and claims it."""
    assert isinstance(written_in, DependencyFormat)
    assert written_in.found_by
    assert written_in.claims(file_named_by(written_in.found_by[0]))


def test_every_format_module_is_registered_once() -> None:
    """A module of builder.image.locks that defines a FORMAT is in FORMATS, and only once."""
    defined = []
    for module in pkgutil.iter_modules(locks.__path__):
        loaded = importlib.import_module(f"{locks.__name__}.{module.name}")
        if hasattr(loaded, "FORMAT"):
            defined.append(loaded.FORMAT)

    assert len(FORMATS) == len({id(f) for f in FORMATS}) == len({f.name for f in FORMATS})
    assert {id(f) for f in defined} == {id(f) for f in FORMATS}


@pytest.mark.parametrize("written_in", FORMATS, ids=format_ids)
def test_a_format_reads_only_through_the_project_file(written_in: DependencyFormat) -> None:
    """Files held in memory are enough: the format parses, it never opens a file itself."""
    name = file_named_by(written_in.found_by[0])
    files = {name: SAMPLES[written_in.name], **MANIFESTS}
    found = MemoryFile(name, files)

    assert written_in.declares_any(found)
    declared = written_in.declare(found)

    assert (written_in, name) == (declared.format, declared.source)
    assert written_in.manifest == declared.manifest


# --------------------------------------------------------------------------- finding


@pytest.mark.parametrize(
    ("written_in", "pattern"),
    [(f, pattern) for f in FORMATS for pattern in f.found_by],
    ids=lambda value: value if isinstance(value, str) else value.name,
)
def test_each_format_is_found_by_its_files(
    tmp_path: Path, written_in: DependencyFormat, pattern: str
) -> None:
    """A project holding only a format's file (and its manifest) is read in that format."""
    name = write_format(tmp_path, written_in, pattern)

    found = read_declared(tmp_path, tmp_path)

    assert (written_in, name) == (found.format, found.source)


def test_the_order_of_preference_is_locks_then_requirements_then_pyproject() -> None:
    """The four locks come first, uv's first; a manifest comes after every lock."""
    assert [
        "uv.lock",
        "poetry.lock",
        "Pipfile.lock",
        "pylock.toml",
        "requirements",
        "pyproject.toml",
    ] == [f.name for f in FORMATS]


def test_discovery_takes_the_first_format_present_in_that_order(tmp_path: Path) -> None:
    """With every format's file present, each is read in turn as the ones before it go."""
    names = [write_format(tmp_path, f, f.found_by[0]) for f in FORMATS]

    for written_in, name in zip(FORMATS, names, strict=True):
        assert written_in == read_declared(tmp_path, tmp_path).format
        (tmp_path / name).unlink()


def test_a_lock_at_the_root_wins_over_any_manifest_beside_manage_py(tmp_path: Path) -> None:
    """Each format is looked for in both directories before the next: uv.lock at the root wins."""
    app = tmp_path / "app"
    app.mkdir()
    write_format(tmp_path, FORMATS[0], "uv.lock")
    for later in FORMATS[1:]:
        write_format(app, later, later.found_by[0])

    found = read_declared(tmp_path, app)

    assert ("uv.lock", "uv.lock") == (found.format.name, found.source)


def test_a_lock_beside_manage_py_wins_over_the_same_at_the_root(tmp_path: Path) -> None:
    """Within one format, the directory of manage.py comes first."""
    app = tmp_path / "app"
    app.mkdir()
    write_format(tmp_path, FORMATS[0], "uv.lock")
    write_format(app, FORMATS[0], "uv.lock")

    assert "app/uv.lock" == read_declared(tmp_path, app).source


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("pylock.dev.toml", "pylock.toml"),
        ("Pipfile.lock", "Pipfile.lock"),
        ("requirements-prod.txt", "requirements"),
        ("deps.in", "requirements"),
        ("pyproject.toml", "pyproject.toml"),
    ],
)
def test_a_named_file_is_read_in_the_format_that_claims_it(
    tmp_path: Path, filename: str, expected: str
) -> None:
    """--requirements FILE: the format claiming the name reads it; any other is pip's format."""
    written_in = next(f for f in FORMATS if f.name == expected)
    (tmp_path / filename).write_text(SAMPLES[expected])

    found = read_declared(tmp_path, tmp_path, tmp_path / filename)

    assert (expected, filename) == (found.format.name, found.source)
    assert written_in is found.format


def test_requirement_includes_are_read_in_place_and_once(tmp_path: Path) -> None:
    """-r lines are replaced by the file's lines; a file included again (a cycle) adds none."""
    (tmp_path / "requirements.txt").write_text("Django>=5.2\n-r base.txt\ngunicorn\n")
    (tmp_path / "base.txt").write_text("redis\n-r requirements.txt\n-r ./base.txt\n")

    found = read_declared(tmp_path, tmp_path)

    assert ("Django>=5.2", "redis", "gunicorn") == found.direct
