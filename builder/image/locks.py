"""Read lock files into exact pins for one target Python, never re-resolving them.

Each ``parse_*`` function takes a lock's text (and what it needs of its manifest), the
target's marker environment and the optional groups asked for, and returns the
:class:`Pin` list to install: every package of the lock whose markers hold for the
TARGET (not for the host running kitbuild), with its version and hashes as locked. The
formats are read with ``tomllib``, ``json``, ``packaging`` (PEP 508 markers, PEP 440
versions, PEP 751 ``pylock.toml``) and poetry-core (Poetry's version constraints).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from packaging.markers import InvalidMarker, Marker
from packaging.pylock import Pylock, PylockSelectError, PylockValidationError
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from builder.errors import LockError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator, Sequence


@dataclasses.dataclass(frozen=True)
class Pin:
    """One package at one exact version, with the hashes its files may have (maybe none)."""

    name: str  # canonical
    version: str
    hashes: tuple[str, ...] = ()  # "sha256:<hex>", as pip's --hash takes them

    def line(self) -> str:
        """The requirements-file line pip installs it from."""
        return f"{self.name}=={self.version}" + "".join(f" --hash={h}" for h in self.hashes)


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


def _compatible(filename: str, target: Target) -> bool:
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return False
    return not tags.isdisjoint(target.tags)


def _installable(
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


def _unknown_groups(asked: Collection[str], known: Collection[str], lock: str) -> None:
    missing = [group for group in asked if group not in known]
    if missing:
        listed = ", ".join(sorted(known)) or "none"
        raise LockError(f"{lock} has no group or extra {missing[0]!r}; it has: {listed}")


def _filename(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("#", 1)[0]


# --------------------------------------------------------------------------- uv.lock


def parse_uv_lock(text: str, target: Target, groups: Collection[str], lock: str) -> list[Pin]:
    """The packages uv.lock installs for the target: the root project's dependencies, walked."""
    data = _toml(text, lock)
    check_python(data.get("requires-python"), target, lock, "requires-python")
    packages: list[dict[str, Any]] = data.get("package", [])
    roots = [p for p in packages if _local_source(p.get("source", {})) == "."]
    if len(roots) != 1:
        raise LockError(f"{lock}: no project package with source '.'; is this uv's lock?")
    root = roots[0]
    optional = root.get("optional-dependencies", {})
    dev = root.get("dev-dependencies", {})
    _unknown_groups(groups, [*optional, *dev], lock)
    pending: list[tuple[dict[str, Any], str]] = [(d, "") for d in root.get("dependencies", [])]
    for group in groups:
        pending += [(d, "") for d in [*optional.get(group, []), *dev.get(group, [])]]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in packages:
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)

    chosen: dict[str, Pin] = {}
    extras_done: set[tuple[str, str]] = set()
    while pending:
        dependency, _ = pending.pop()
        if not marker_holds(dependency.get("marker"), target, lock):
            continue
        name = canonicalize_name(dependency["name"])
        package = _uv_package(by_name.get(name, []), dependency, target, lock)
        source = package.get("source", {})
        if package is not root and _local_source(source) is not None:
            raise LockError(
                f"{lock}: {name} comes from {_local_source(source)}, not a package index; "
                "kitbuild installs packages by name and version only"
            )
        if "version" not in package:
            raise LockError(f"{lock}: {name} has no version (a path or VCS source?)")
        wheels = package.get("wheels", [])
        sdist = package.get("sdist")
        if name not in chosen:
            _installable(
                name,
                package["version"],
                (_filename(w["url"]) for w in wheels if "url" in w),
                has_sdist=sdist is not None,
                target=target,
                lock=lock,
            )
            hashes = [w["hash"] for w in wheels if "hash" in w]
            if sdist and "hash" in sdist:
                hashes.append(sdist["hash"])
            chosen[name] = Pin(name, package["version"], tuple(hashes))
            pending += [(d, "") for d in package.get("dependencies", [])]
        for extra in dependency.get("extra", []):
            if (name, extra) not in extras_done:
                extras_done.add((name, extra))
                pending += [
                    (d, "") for d in package.get("optional-dependencies", {}).get(extra, [])
                ]
    return sorted(chosen.values(), key=lambda pin: pin.name)


def _uv_package(
    entries: Sequence[dict[str, Any]], dependency: Mapping[str, Any], target: Target, lock: str
) -> dict[str, Any]:
    """The lock entry a dependency means (uv names the version when there are several)."""
    candidates = [
        p
        for p in entries
        if "version" not in dependency or p.get("version") == dependency["version"]
    ]
    if len(candidates) > 1:  # forked: keep the version whose resolution markers hold
        candidates = [
            p
            for p in candidates
            if any(marker_holds(m, target, lock) for m in p.get("resolution-markers", [""]))
        ] or candidates[:1]
    if not candidates:
        raise LockError(
            f"{lock} names {dependency['name']} as a dependency but has no entry for it"
        )
    return candidates[0]


def uv_manifest_requirements(text: str, lock: str) -> list[str]:
    """The root's requires-dist as uv recorded it when locking (to compare with the manifest)."""
    for package in _toml(text, lock).get("package", []):
        if _local_source(package.get("source", {})) == ".":
            lines = []
            for item in package.get("metadata", {}).get("requires-dist", []):
                extras = f"[{','.join(item['extras'])}]" if item.get("extras") else ""
                marker = f"; {item['marker']}" if item.get("marker") else ""
                lines.append(f"{item['name']}{extras}{item.get('specifier', '')}{marker}")
            return lines
    return []


def _local_source(source: Mapping[str, Any]) -> str | None:
    for key in ("editable", "virtual", "path", "directory", "git", "url"):
        if key in source:
            return str(source[key]) if key in ("editable", "virtual") else f"{key} {source[key]}"
    return None


# --------------------------------------------------------------------------- poetry.lock


def poetry_constraint(constraint: str) -> SpecifierSet:
    """A Poetry version constraint (``^1.2``, ``~1.2``, ``1.2.*``, ``>=1,<2``) as PEP 440."""
    from poetry.core.constraints.version import parse_constraint  # noqa: PLC0415 (heavy)

    text = constraint.strip()
    if text in ("", "*"):
        return SpecifierSet()
    try:
        converted = str(parse_constraint(text))
    except (ValueError, RuntimeError) as error:
        raise LockError(f"cannot read the version constraint {constraint!r}: {error}") from None
    if converted == "*" or "||" in converted:
        # A union (^1 || ^2) has no PEP 440 spelling: the lock's own choice stands.
        return SpecifierSet()
    try:
        Version(converted)
        converted = f"=={converted}"  # Poetry writes an exact version bare
    except InvalidVersion:
        pass
    try:
        return SpecifierSet(converted)
    except InvalidSpecifier:
        raise LockError(f"cannot read the version constraint {constraint!r}") from None


@dataclasses.dataclass(frozen=True)
class PoetryDependency:
    """One entry of a Poetry dependency table, as far as choosing packages goes."""

    name: str
    specifier: SpecifierSet
    marker: str | None
    python: str | None  # a Poetry constraint on the Python version
    extras: tuple[str, ...]
    optional: bool
    local: str | None  # path/git/url: not installable by name


def poetry_dependencies(table: Mapping[str, Any], source: str) -> list[PoetryDependency]:
    """A ``[tool.poetry.dependencies]``-style table (also a lock package's), ``python`` left out."""
    items: list[PoetryDependency] = []
    for raw_name, value in table.items():
        if raw_name.lower() == "python":
            continue
        name = canonicalize_name(raw_name)
        for entry in value if isinstance(value, list) else [value]:
            spec: Mapping[str, Any] = {"version": entry} if isinstance(entry, str) else entry
            local = next((f"{k} {spec[k]}" for k in ("path", "git", "url") if k in spec), None)
            try:
                specifier = poetry_constraint(str(spec.get("version", "*")))
            except LockError as error:
                raise LockError(f"{source}: {name}: {error}") from None
            items.append(
                PoetryDependency(
                    name=name,
                    specifier=specifier,
                    marker=spec.get("markers"),
                    python=spec.get("python"),
                    extras=tuple(spec.get("extras", ())),
                    optional=bool(spec.get("optional", False)),
                    local=local,
                )
            )
    return items


def _poetry_applies(
    dependency: PoetryDependency, target: Target, source: str, extras: Collection[str]
) -> bool:
    """Whether a dependency holds for the target, given the extras its parent was asked for.

    A lock marks an extra's dependencies `extra == "tls"`, which holds only for that extra.
    """
    if dependency.python and not poetry_constraint(dependency.python).contains(
        target.python, prereleases=True
    ):
        return False
    return any(marker_holds(dependency.marker, target, source, extra) for extra in ("", *extras))


def parse_poetry_lock(
    text: str, roots: Sequence[PoetryDependency], target: Target, lock: str, manifest: str
) -> list[Pin]:
    """Walk poetry.lock from the manifest's chosen dependencies (``roots``) for the target."""
    data = _toml(text, lock)
    python = data.get("metadata", {}).get("python-versions")
    if python:
        allowed = poetry_constraint(python)
        check_python(str(allowed), target, lock, f"python {python}")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in data.get("package", []):
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    chosen: dict[str, Pin] = {}
    seen: set[tuple[str, str]] = set()
    # Each pending dependency comes with its parent and the extras the parent was asked for.
    pending: list[tuple[PoetryDependency, str, frozenset[str]]] = [
        (d, "", frozenset()) for d in roots
    ]
    while pending:
        dependency, parent, parent_extras = pending.pop()
        if not _poetry_applies(dependency, target, lock, parent_extras):
            continue
        if dependency.local:
            raise LockError(
                f"{lock}: {dependency.name} comes from {dependency.local}, not a package index; "
                "kitbuild installs packages by name and version only"
            )
        candidates = by_name.get(dependency.name, [])
        fitting = [
            p
            for p in candidates
            if dependency.specifier.contains(str(p["version"]), prereleases=True)
        ]
        if parent == "" and not fitting:
            found = f"locked at {candidates[0]['version']}, outside {dependency.specifier}"
            raise LockError(
                f"{lock} does not match {manifest}: {dependency.name} is "
                f"{found if candidates else 'not in the lock'}; re-lock the project (poetry lock)"
            )
        if not candidates:
            raise LockError(
                f"{lock} has no entry for {dependency.name} (needed by {parent}); "
                "re-lock the project (poetry lock)"
            )
        package = (fitting or candidates)[0]
        name, version = dependency.name, str(package["version"])
        if package.get("source", {}).get("type") in ("directory", "file", "git", "url"):
            raise LockError(
                f"{lock}: {name} comes from a {package['source']['type']} source, not a "
                "package index; kitbuild installs packages by name and version only"
            )
        key = (name, ",".join(sorted(dependency.extras)))
        if key in seen:
            continue
        seen.add(key)
        if name not in chosen:
            files = package.get("files", [])
            check_python(
                _poetry_python(package.get("python-versions")), target, lock, f"{name} {version}"
            )
            _installable(
                name,
                version,
                (f["file"] for f in files if f["file"].endswith(".whl")),
                has_sdist=any(not f["file"].endswith(".whl") for f in files),
                target=target,
                lock=lock,
            )
            chosen[name] = Pin(name, version, tuple(f["hash"] for f in files if "hash" in f))
        declared = poetry_dependencies(package.get("dependencies", {}), lock)
        wanted_optional = _poetry_extra_names(package, dependency.extras)
        extras = frozenset(dependency.extras)
        for item in declared:
            if not item.optional or item.name in wanted_optional:
                pending.append((item, name, extras))
    return sorted(chosen.values(), key=lambda pin: pin.name)


def _poetry_python(constraint: str | None) -> str | None:
    return str(poetry_constraint(constraint)) if constraint else None


def _poetry_extra_names(package: Mapping[str, Any], extras: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for extra in extras:
        for item in package.get("extras", {}).get(extra, []):
            names.add(canonicalize_name(item.split("(")[0].split("[")[0].strip()))
    return names


# --------------------------------------------------------------------------- Pipfile.lock


def parse_pipfile_lock(
    text: str, target: Target, categories: Sequence[str], lock: str
) -> list[Pin]:
    """The ``default`` packages of Pipfile.lock and the categories asked for, for the target."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LockError(f"{lock} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or "default" not in data:
        raise LockError(f"{lock}: no 'default' section; is this Pipenv's lock?")
    requires = data.get("_meta", {}).get("requires", {})
    for key, full in (("python_full_version", True), ("python_version", False)):
        wanted = requires.get(key)
        if wanted and not _same_python(str(wanted), target, full=full):
            raise LockError(
                f"{lock} is locked for Python {wanted} ({key}), but the image's Python is "
                f"{target.python}; re-lock for it or pick another base (--base-image)"
            )
    sections = ["default", *("develop" if c in ("dev", "dev-packages") else c for c in categories)]
    _unknown_groups(sections, [k for k in data if not k.startswith("_")], lock)
    chosen: dict[str, Pin] = {}
    for section in sections:
        for raw_name, entry in data[section].items():
            name = canonicalize_name(raw_name)
            if not marker_holds(entry.get("markers"), target, lock) or name in chosen:
                continue
            version = str(entry.get("version", ""))
            if not version.startswith("=="):
                raise LockError(
                    f"{lock}: {name} is not pinned to a version (a path, VCS or editable "
                    "entry?); kitbuild installs packages by name and version only"
                )
            chosen[name] = Pin(name, version[2:], tuple(entry.get("hashes", ())))
    return sorted(chosen.values(), key=lambda pin: pin.name)


def _same_python(wanted: str, target: Target, *, full: bool) -> bool:
    have = target.python.split(".")
    parts = wanted.split(".")
    return have[: len(parts)] == parts if full or len(parts) < 3 else have == parts


# --------------------------------------------------------------------------- pylock.toml


def parse_pylock(text: str, target: Target, groups: Collection[str], lock: str) -> list[Pin]:
    """PEP 751's own selection (packaging.pylock) for the target's environment and tags."""
    try:
        pylock = Pylock.from_dict(_toml(text, lock))
    except PylockValidationError as error:
        raise LockError(f"{lock} is not a valid pylock.toml: {error}") from None
    check_python(str(pylock.requires_python or ""), target, lock, "requires-python")
    extras = [g for g in groups if g in (pylock.extras or ())]
    dependency_groups = [g for g in groups if g in (pylock.dependency_groups or ())]
    _unknown_groups(groups, [*(pylock.extras or ()), *(pylock.dependency_groups or ())], lock)
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
        if package.version is None or (package.wheels is None and package.sdist is None):
            raise LockError(
                f"{lock}: {package.name} is not a released package (a path, VCS or archive "
                "entry); kitbuild installs packages by name and version only"
            )
        digests = [dict(w.hashes) for w in package.wheels or ()]
        digests += [dict(package.sdist.hashes)] if package.sdist else []
        hashes = tuple(f"{algo}:{value}" for found in digests for algo, value in found.items())
        name = canonicalize_name(package.name)
        pins[name] = Pin(name, str(package.version), hashes)
    return sorted(pins.values(), key=lambda pin: pin.name)


# --------------------------------------------------------------------------- requirements


def parse_hashed_requirements(
    lines: Iterable[tuple[str, tuple[str, ...], str]], target: Target
) -> list[Pin]:
    """Requirements with --hash (``(requirement, hashes, where)``) as pins, like a lock.

    pip's hash-checking mode needs every requirement pinned with ``==`` and hashed; a file
    that hashes some lines but not others is refused the way pip would refuse it.
    """
    pins: dict[str, Pin] = {}
    for text, hashes, where in lines:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise LockError(f"{where}: cannot parse {text!r}: {error}") from None
        if requirement.marker is not None and not requirement.marker.evaluate(
            {**target.environment, "extra": ""}
        ):
            continue
        pinned = [s for s in requirement.specifier if s.operator in ("==", "===")]
        if not hashes or len(pinned) != 1 or "*" in pinned[0].version:
            raise LockError(
                f"{where}: {requirement.name} needs an exact ==version and --hash, "
                "since other requirements in the file have hashes (pip's hash-checking mode)"
            )
        name = canonicalize_name(requirement.name)
        known = pins.get(name)
        merged = tuple(dict.fromkeys([*(known.hashes if known else ()), *hashes]))
        pins[name] = Pin(name, pinned[0].version, merged)
    return sorted(pins.values(), key=lambda pin: pin.name)


def locked_version(pins: Iterator[Pin] | Sequence[Pin], name: str) -> str | None:
    """The version a pin list has for ``name``."""
    wanted = canonicalize_name(name)
    return next((pin.version for pin in pins if pin.name == wanted), None)


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LockError(f"{source} is not valid TOML: {error}") from None
