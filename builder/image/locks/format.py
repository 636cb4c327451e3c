"""The protocol every dependency format follows, and what a format reads a project into.

A :class:`DependencyFormat` is one way a project writes its dependencies down: a lock, a
requirements file, pyproject.toml. :mod:`builder.image.dependencies` finds the first one
present and hands its file over as a :class:`ProjectFile` (formats parse; they never open
files themselves). The format reads it into a :class:`Declared`, which gives the
:class:`Selection` for the image's Python once that is known. :class:`LockFile` is what
the lock formats share; the helpers below are what several formats read the same way.
"""

from __future__ import annotations

import abc
import dataclasses
import tomllib
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from builder.errors import ProjectError
from builder.image.locks.pins import Direct, check_manifest

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from builder.errors import KitError
    from builder.image.locks.pins import PackageIndex, Pin, Target


class ProjectFile(Protocol):
    """A file of the project as a format reads it: its name, its text, the files beside it."""

    @property
    def source(self) -> str:
        """Its path relative to the project's root, as messages name it."""
        ...

    def text(self) -> str:
        """Its text (ProjectError saying why when it cannot be read)."""
        ...

    def beside(self, name: str) -> ProjectFile | None:
        """The file at ``name`` relative to this file's directory; None if there is none."""
        ...


@runtime_checkable  # so that a test can hold every registered format to it
class DependencyFormat(Protocol):
    """One way a project writes its dependencies down: a lock, or a form left to resolve."""

    @property
    def name(self) -> str:
        """How messages and tests name it: "uv.lock", "requirements", "pyproject.toml"."""
        ...

    @property
    def found_by(self) -> tuple[str, ...]:
        """The file names (or glob patterns) it is found by in a directory, preferred first.

        Several files matching one pattern are a choice the user must make.
        """
        ...

    @property
    def manifest(self) -> str | None:
        """The file beside it that it pairs with and is checked against, if any."""
        ...

    def claims(self, filename: str) -> bool:
        """Whether a file named with ``--requirements`` is written in this format."""
        ...

    def declares_any(self, found: ProjectFile) -> bool:
        """Whether a file found by name declares dependencies; discovery passes over it if not."""
        ...

    def declare(self, found: ProjectFile) -> Declared:
        """Read the file (and its manifest or includes) into the packages it declares."""
        ...

    def requires_python(self, declared: Declared) -> str | None:
        """The Python versions the file allows (a PEP 440 specifier), when it says."""
        ...

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The exact pins (or requirements left to resolve) for the target, with the groups."""
        ...


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the image installs: exact pins (from a lock), or requirements still to resolve."""

    pins: tuple[Pin, ...] = ()
    unresolved: tuple[str, ...] = ()
    #: The indexes the project names for its unresolved requirements (a lock's pins carry
    #: their own).
    indexes: tuple[PackageIndex, ...] = ()

    @property
    def locked(self) -> bool:
        """Whether the versions (and hashes) are fixed by the project."""
        return bool(self.pins) and not self.unresolved


@dataclasses.dataclass(frozen=True)
class Declared:
    """A project's dependency files, read but not yet evaluated for a target.

    Attributes:
        format: the format the file is written in; it reads the rest.
        source: the file read, relative to the project's root.
        direct: the requirements the project names itself (PEP 508), for the Django
            version and the drivers it brings; for a lock, its locked ``name==version``.
        notes: what kitbuild did differently from the file, said once at build time.

    """

    format: DependencyFormat
    source: str
    direct: tuple[str, ...]
    notes: tuple[str, ...] = ()
    text: str = ""  # the lock's text
    manifest: str | None = None  # the manifest beside a lock, relative to the root
    manifest_text: str = ""
    hashed: tuple[tuple[str, tuple[str, ...], str], ...] = ()  # requirements with --hash
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # unlocked optional groups
    indexes: tuple[PackageIndex, ...] = ()  # the indexes an unlocked file names

    def requires_python(self) -> SpecifierSet | None:
        """The Python versions the project (or its lock) allows, when it says."""
        text = self.format.requires_python(self)
        try:
            return SpecifierSet(text) if text else None
        except InvalidSpecifier:
            raise ProjectError(f"{self.source}: cannot read its Python range {text!r}") from None

    def select(self, target: Target, groups: Collection[str] = ()) -> Selection:
        """The pins (or unresolved requirements) for the target, with the optional groups."""
        return self.format.select(self, target, groups)


class LockFile(abc.ABC):
    """What the lock formats share: found by their own name, always read, with a manifest.

    A lock format subclasses it, names its file and manifest and selects its pins; it
    overrides what its lock writes its own way (the Python it allows, the names it holds).
    """

    name: str
    found_by: tuple[str, ...]
    manifest: str
    #: uv's and Poetry's locks are read against their manifest: refused without one.
    manifest_required = False
    #: The TOML table that lists the lock's packages.
    packages_table = "package"

    def claims(self, filename: str) -> bool:
        """A file named as the lock is."""
        return filename in self.found_by

    def declares_any(self, found: ProjectFile) -> bool:
        """A lock found is read, whatever it holds."""
        return True

    def declare(self, found: ProjectFile) -> Declared:
        """The lock, with the manifest beside it; without one, refused if it is required.

        The manifest's absence is said before the lock's own text is read.
        """
        manifest = found.beside(self.manifest)
        if manifest is None and self.manifest_required:
            raise ProjectError(f"{found.source} has no {self.manifest} beside it")
        text = found.text()
        manifest_text = manifest.text() if manifest is not None else ""
        return Declared(
            format=self,
            source=found.source,
            direct=tuple(self.locked_names(text, found.source)),
            text=text,
            manifest=manifest.source if manifest is not None else None,
            manifest_text=manifest_text,
        )

    def locked_names(self, text: str, source: str) -> list[str]:
        """Every ``name==version`` the lock holds, whatever the markers, but the project's own."""
        return [
            f"{p['name']}=={p['version']}"
            for p in parse_toml(text, source).get(self.packages_table, [])
            if "version" in p and not _is_root(p)
        ]

    def requires_python(self, declared: Declared) -> str | None:
        """The lock's top-level ``requires-python`` (uv's and PEP 751's name for it)."""
        allowed: str | None = parse_toml(declared.text, declared.source).get("requires-python")
        return allowed

    @abc.abstractmethod
    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The lock's pins for the target, with the groups, checked against its manifest."""


def _is_root(package: Mapping[str, Any]) -> bool:
    source = package.get("source", {})
    return isinstance(source, dict) and ("editable" in source or "virtual" in source)


def unresolved(declared: Declared, groups: Collection[str]) -> Selection:
    """The requirements the project names, with the groups asked for, left to the resolver."""
    table = dict(declared.groups)
    missing = [g for g in groups if g not in table]
    if missing:
        known = ", ".join(table) or "none"
        raise ProjectError(
            f"{declared.source} has no group or extra {missing[0]!r}; it has: {known}"
        )
    extra = [line for group in groups for line in table[group]]
    return Selection(
        unresolved=tuple(dict.fromkeys([*declared.direct, *extra])), indexes=declared.indexes
    )


def check_against_project(pins: Sequence[Pin], declared: Declared, target: Target) -> None:
    """A lock pins every ``[project]`` dependency of the pyproject.toml beside it (if any)."""
    if declared.manifest is not None:
        direct = pep508_direct(project_dependencies(declared), declared.manifest)
        check_manifest(pins, direct, target, declared.source, declared.manifest)


def project_dependencies(declared: Declared) -> list[str]:
    """The ``[project] dependencies`` of the pyproject.toml beside a lock (none without one)."""
    if declared.manifest is None:
        return []
    project = parse_toml(declared.manifest_text, declared.manifest).get("project", {})
    lines: list[str] = project.get("dependencies", [])
    return lines


def pep508_direct(lines: Sequence[str], source: str) -> list[Direct]:
    """A manifest's PEP 508 dependency lines, as what its lock must pin."""
    found = []
    for line in lines:
        requirement = parse_requirement(line, source)
        found.append(
            Direct(canonicalize_name(requirement.name), requirement.specifier, requirement.marker)
        )
    return found


def parse_requirement(line: str, source: str) -> Requirement:
    """One PEP 508 line of a manifest (ProjectError naming the file when it is not one)."""
    try:
        return Requirement(line)
    except InvalidRequirement as error:
        raise ProjectError(f"{source}: cannot parse requirement {line!r}: {error}") from None


def parse_toml(text: str, source: str, error: type[KitError] = ProjectError) -> dict[str, Any]:
    """A TOML file's table; ``error`` says whose problem a broken file is (LockError)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise error(f"{source} is not valid TOML: {problem}") from None
