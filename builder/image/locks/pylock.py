"""pylock.toml: the standard lock (PEP 751), selected by packaging's own reader."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from packaging.pylock import Pylock, PylockSelectError, PylockValidationError
from packaging.utils import canonicalize_name

from builder.errors import LockError
from builder.image.locks.format import LockFile, Selection, check_against_project, parse_toml
from builder.image.locks.pins import Pin, check_groups, check_python, sorted_pins
from builder.image.locks.sources import check_direct, git_reference

if TYPE_CHECKING:
    from collections.abc import Collection

    from packaging.pylock import Package

    from builder.image.locks.format import Declared
    from builder.image.locks.pins import Target

#: PEP 751's other name, ``pylock.<name>.toml``: read when named, never found on its own.
_NAMED = re.compile(r"pylock\.[^.]+\.toml")


class PylockToml(LockFile):
    """``pylock.toml``, checked against the pyproject.toml beside it when there is one."""

    name = "pylock.toml"
    found_by = ("pylock.toml",)
    manifest = "pyproject.toml"
    packages_table = "packages"

    def claims(self, filename: str) -> bool:
        """pylock.toml, or pylock.<name>.toml."""
        return super().claims(filename) or _NAMED.fullmatch(filename) is not None

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The lock's selection, checked against pyproject.toml's dependencies when it is there."""
        pins = parse_lock(declared.text, target, groups, declared.source)
        check_against_project(pins, declared, target)
        return Selection(pins=tuple(pins))


FORMAT = PylockToml()


def parse_lock(text: str, target: Target, groups: Collection[str], lock: str) -> list[Pin]:
    """PEP 751's own selection (packaging.pylock) for the target's environment and tags."""
    try:
        pylock = Pylock.from_dict(parse_toml(text, lock, LockError))
    except PylockValidationError as error:
        raise LockError(f"{lock} is not a valid pylock.toml: {error}") from None
    check_python(str(pylock.requires_python or ""), target, lock, "requires-python")
    extras = [g for g in groups if g in (pylock.extras or ())]
    dependency_groups = [g for g in groups if g in (pylock.dependency_groups or ())]
    check_groups(groups, [*(pylock.extras or ()), *(pylock.dependency_groups or ())], lock)
    default = list(pylock.default_groups or ())
    try:
        selected = list(
            pylock.select(
                environment=dict(target.environment),  # type: ignore[arg-type]
                tags=sorted(target.tags, key=str),
                extras=extras,
                dependency_groups=[*default, *dependency_groups],
            )
        )
    except PylockSelectError as error:
        raise LockError(f"{lock}: nothing to install for the image's Python: {error}") from None
    pins: dict[str, Pin] = {}
    for package, _ in selected:
        direct = _direct(package, lock)
        if direct is not None:
            pins[direct.name] = direct
            continue
        if package.version is None or (package.wheels is None and package.sdist is None):
            raise LockError(
                f"{lock}: {package.name} is not a released package (a local path); "
                "kitbuild installs packages by name and version only"
            )
        digests = [dict(w.hashes) for w in package.wheels or ()]
        digests += [dict(package.sdist.hashes)] if package.sdist else []
        hashes = tuple(f"{algo}:{value}" for found in digests for algo, value in found.items())
        name = canonicalize_name(package.name)
        pins[name] = Pin(name, str(package.version), hashes)
    return sorted_pins(pins.values())


def _direct(package: Package, lock: str) -> Pin | None:
    """A package locked from a git repository or an archive URL (None for an index's)."""
    name = canonicalize_name(package.name)
    version = str(package.version) if package.version is not None else ""
    if package.vcs is not None and package.vcs.url:
        if package.vcs.type != "git":
            raise LockError(
                f"{lock}: {name} comes from {package.vcs.type}; kitbuild builds VCS packages "
                "from git repositories only"
            )
        url = git_reference(package.vcs.url, package.vcs.commit_id, package.vcs.subdirectory)
        check_direct(url, f"{lock}: {name}")
        return Pin(name, version, url=url)
    if package.archive is not None and package.archive.url:
        hashes = tuple(f"{algo}:{value}" for algo, value in package.archive.hashes.items())
        return Pin(name, version, hashes, url=package.archive.url)
    return None
