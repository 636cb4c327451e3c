"""Pins, the target they are chosen for, and the checks every lock format makes of them.

A format chooses :class:`Pin` objects for a :class:`Target` (the image's Python, not the
host's); the checks here say the same thing the same way whichever lock is read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion

from builder.errors import LockError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class PackageIndex:
    """An index (or a --find-links location) a project names for its packages.

    ``url`` is kept as written: ``${VARIABLE}`` references in it are expanded only when it
    is used, on the host (:mod:`builder.image.indexes`), so no credential is ever stored.
    """

    url: str
    #: "index" replaces the configured index; "extra" is searched beside it; "links" is a
    #: --find-links location.
    kind: str = "extra"
    #: The project's name for it (uv, Poetry, Pipfile): its credentials' variables use it.
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Pin:
    """One package at one exact version, with the hashes its files may have (maybe none)."""

    name: str  # canonical
    version: str  # "" for a direct reference not built yet: its wheel says
    hashes: tuple[str, ...] = ()  # "sha256:<hex>", as pip's --hash takes them
    #: A direct reference (PEP 508 ``name @ url``) instead of an index: a VCS URL
    #: (``git+https://host/repo.git@<commit>``) or an archive's URL.
    url: str | None = None
    #: Where it is fetched from instead of the configured index, as the project says.
    indexes: tuple[PackageIndex, ...] = ()

    def line(self) -> str:
        """The requirements-file line pip installs it from."""
        base = f"{self.name} @ {self.url}" if self.url else f"{self.name}=={self.version}"
        return base + "".join(f" --hash={h}" for h in self.hashes)


@dataclasses.dataclass(frozen=True)
class Target:
    """What markers and wheel tags are evaluated against: the image's Python, not the host's."""

    environment: Mapping[str, str]  # PEP 508 marker variables
    tags: frozenset[Tag]

    @property
    def python(self) -> str:
        """The full version, e.g. 3.11.2."""
        return self.environment["python_full_version"]


@dataclasses.dataclass(frozen=True)
class Direct:
    """A dependency the manifest names: checked against what the lock pins."""

    name: str
    specifier: SpecifierSet
    marker: Marker | None = None


def marker_holds(marker: str | Marker | None, target: Target, source: str, extra: str = "") -> bool:
    """Whether a PEP 508 marker holds for the target (an ``extra`` marker for ``extra``)."""
    if marker is None or marker == "":
        return True
    try:
        parsed = marker if isinstance(marker, Marker) else Marker(marker)
    except InvalidMarker as error:
        raise LockError(f"{source}: cannot read the marker {marker!r}: {error}") from None
    return parsed.evaluate({**target.environment, "extra": extra})


def check_python(requires: str | None, target: Target, source: str, what: str) -> None:
    """Refuse a lock (or a package) whose Python range excludes the target's Python."""
    if not requires or requires.strip() in ("*", ""):
        return
    try:
        allowed = SpecifierSet(requires)
    except InvalidSpecifier:
        raise LockError(f"{source}: cannot read the Python range {requires!r} of {what}") from None
    if not allowed.contains(target.python, prereleases=True):
        raise LockError(
            f"{source} is locked for Python {requires} ({what}), but the image's Python is "
            f"{target.python}; re-lock for it or pick another base (--base-image)"
        )


def check_manifest(
    pins: Sequence[Pin], direct: Iterable[Direct], target: Target, lock: str, manifest: str
) -> None:
    """Every manifest dependency that applies to the target is locked, at a version it allows."""
    versions = {pin.name: pin.version for pin in pins}
    for item in direct:
        if item.marker is not None and not marker_holds(item.marker, target, manifest):
            continue
        version = versions.get(item.name)
        if version == "":
            continue  # a direct reference: its version is what its wheel says
        if version is None:
            raise LockError(
                f"{lock} does not match {manifest}: {item.name} is not in the lock; "
                "re-lock the project"
            )
        if not item.specifier.contains(version, prereleases=True):
            raise LockError(
                f"{lock} does not match {manifest}: {item.name} is locked at {version}, "
                f"outside {item.specifier}; re-lock the project"
            )


def check_installable(
    name: str, version: str, wheels: Iterable[str], *, has_sdist: bool, target: Target, lock: str
) -> None:
    """A locked package needs a wheel for the target or a source archive to compile."""
    wheels = list(wheels)
    if has_sdist or not wheels or any(_compatible(w, target) for w in wheels):
        return
    raise LockError(
        f"{lock} has no file of {name} {version} for the image's Python {target.python} "
        "on its platform (only wheels for others); re-lock for that Python or pick another base"
    )


def _compatible(filename: str, target: Target) -> bool:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    return not tags.isdisjoint(target.tags)


def check_groups(asked: Collection[str], known: Collection[str], lock: str) -> None:
    """Refuse a group (or extra, or category) the lock does not have, listing those it has."""
    missing = [group for group in asked if group not in known]
    if missing:
        listed = ", ".join(sorted(known)) or "none"
        raise LockError(f"{lock} has no group or extra {missing[0]!r}; it has: {listed}")


def sorted_pins(pins: Iterable[Pin]) -> list[Pin]:
    """Pins in the order every format returns them: by canonical name."""
    return sorted(pins, key=lambda pin: pin.name)


def locked_version(pins: Iterator[Pin] | Sequence[Pin], name: str) -> str | None:
    """The version a pin list has for ``name``."""
    wanted = canonicalize_name(name)
    return next((pin.version for pin in pins if pin.name == wanted), None)
