"""poetry.lock, and Poetry's own dependency tables in pyproject.toml.

The lock holds every package Poetry chose but not which of them the project asked for: it
is walked from the manifest's dependencies (:func:`roots`). Without a lock, the same
tables become PEP 508 lines for the resolver (:func:`requirement_lines`, read by
:mod:`builder.image.locks.pyproject`). Poetry's version constraints (``^1.2``, ``~1.2``)
are read with poetry-core.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from packaging.markers import Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from builder.errors import LockError, ProjectError
from builder.image.locks.format import LockFile, Selection, parse_requirement, parse_toml
from builder.image.locks.pins import (
    Direct,
    Pin,
    check_installable,
    check_manifest,
    check_python,
    marker_holds,
    sorted_pins,
)
from builder.image.locks.sources import check_direct, filename_of, git_reference, only_index

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from builder.image.locks.format import Declared
    from builder.image.locks.pins import Target


class PoetryLock(LockFile):
    """``poetry.lock``, beside the pyproject.toml whose Poetry tables it was locked from."""

    name = "poetry.lock"
    found_by = ("poetry.lock",)
    manifest = "pyproject.toml"
    manifest_required = True

    def requires_python(self, declared: Declared) -> str | None:
        """The lock's ``python-versions``, a Poetry constraint, as PEP 440."""
        data = parse_toml(declared.text, declared.source)
        python = data.get("metadata", {}).get("python-versions")
        return str(pep440_specifier(python)) if python else None

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The lock walked from the manifest's dependencies and the groups asked for."""
        manifest = declared.manifest or "pyproject.toml"
        chosen = roots(parse_toml(declared.manifest_text, manifest), groups, manifest)
        pins = parse_lock(declared.text, chosen, target, declared.source, manifest)
        direct = [Direct(r.name, r.specifier, marker_of(r)) for r in chosen]
        check_manifest(pins, direct, target, declared.source, manifest)
        return Selection(pins=tuple(pins))


FORMAT = PoetryLock()


def pep440_specifier(constraint: str) -> SpecifierSet:
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
class Dependency:
    """One entry of a Poetry dependency table, as far as choosing packages goes."""

    name: str
    specifier: SpecifierSet
    marker: str | None
    python: str | None  # a Poetry constraint on the Python version
    extras: tuple[str, ...]
    optional: bool
    local: str | None  # path/git/url: not installable by name
    url: str | None = None  # git or url: the PEP 508 direct reference


def table_dependencies(table: Mapping[str, Any], source: str) -> list[Dependency]:
    """A ``[tool.poetry.dependencies]``-style table (also a lock package's), ``python`` left out."""
    items: list[Dependency] = []
    for raw_name, value in table.items():
        if raw_name.lower() == "python":
            continue
        name = canonicalize_name(raw_name)
        for entry in value if isinstance(value, list) else [value]:
            spec: Mapping[str, Any] = {"version": entry} if isinstance(entry, str) else entry
            local = next((f"{k} {spec[k]}" for k in ("path", "git", "url") if k in spec), None)
            url = _direct_url(spec)
            try:
                specifier = pep440_specifier(str(spec.get("version", "*")))
            except LockError as error:
                raise LockError(f"{source}: {name}: {error}") from None
            items.append(
                Dependency(
                    name=name,
                    specifier=specifier,
                    marker=spec.get("markers"),
                    python=spec.get("python"),
                    extras=tuple(spec.get("extras", ())),
                    optional=bool(spec.get("optional", False)),
                    local=local,
                    url=url,
                )
            )
    return items


def _direct_url(spec: Mapping[str, Any]) -> str | None:
    """A git or url dependency of Poetry's tables as a PEP 508 URL (None for others)."""
    if "git" in spec:
        ref = spec.get("rev") or spec.get("tag") or spec.get("branch")
        return git_reference(str(spec["git"]), ref, spec.get("subdirectory"))
    return str(spec["url"]) if "url" in spec else None


def _applies(dependency: Dependency, target: Target, source: str, extras: Collection[str]) -> bool:
    """Whether a dependency holds for the target, given the extras its parent was asked for.

    A lock marks an extra's dependencies `extra == "tls"`, which holds only for that extra.
    """
    if dependency.python and not pep440_specifier(dependency.python).contains(
        target.python, prereleases=True
    ):
        return False
    return any(marker_holds(dependency.marker, target, source, extra) for extra in ("", *extras))


def parse_lock(
    text: str, roots: Sequence[Dependency], target: Target, lock: str, manifest: str
) -> list[Pin]:
    """Walk poetry.lock from the manifest's chosen dependencies (``roots``) for the target."""
    data = parse_toml(text, lock, LockError)
    python = data.get("metadata", {}).get("python-versions")
    if python:
        allowed = pep440_specifier(python)
        check_python(str(allowed), target, lock, f"python {python}")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in data.get("package", []):
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    chosen: dict[str, Pin] = {}
    seen: set[tuple[str, str]] = set()
    # Each pending dependency comes with its parent and the extras the parent was asked for.
    pending: list[tuple[Dependency, str, frozenset[str]]] = [(d, "", frozenset()) for d in roots]
    while pending:
        dependency, parent, parent_extras = pending.pop()
        if not _applies(dependency, target, lock, parent_extras):
            continue
        if dependency.local and dependency.url is None:
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
        origin = package.get("source", {})
        if origin.get("type") in ("directory", "file"):
            raise LockError(
                f"{lock}: {name} comes from a {origin['type']} source, not a "
                "package index; kitbuild installs packages by name and version only"
            )
        key = (name, ",".join(sorted(dependency.extras)))
        if key in seen:
            continue
        seen.add(key)
        if name not in chosen:
            files = [{**f, "file": filename_of(f["file"])} for f in package.get("files", [])]
            check_python(_python(package.get("python-versions")), target, lock, f"{name} {version}")
            check_installable(
                name,
                version,
                (f["file"] for f in files if f["file"].endswith(".whl")),
                has_sdist=any(not f["file"].endswith(".whl") for f in files),
                target=target,
                lock=lock,
            )
            hashes = tuple(f["hash"] for f in files if "hash" in f)
            chosen[name] = _pin(name, version, hashes, origin, lock)
        declared = table_dependencies(package.get("dependencies", {}), lock)
        wanted_optional = _extra_names(package, dependency.extras)
        extras = frozenset(dependency.extras)
        for item in declared:
            if not item.optional or item.name in wanted_optional:
                pending.append((item, name, extras))
    return sorted_pins(chosen.values())


def _pin(
    name: str, version: str, hashes: tuple[str, ...], origin: Mapping[str, Any], lock: str
) -> Pin:
    """A locked package: from an index (its own, when the lock names one), git or a URL."""
    kind, url = origin.get("type"), str(origin.get("url", ""))
    if kind == "git":
        commit = origin.get("resolved_reference") or origin.get("reference")
        direct = git_reference(url, commit, origin.get("subdirectory"))
        check_direct(direct, f"{lock}: {name}")
        return Pin(name, version, url=direct)
    if kind == "url":
        return Pin(name, version, hashes, url=url)
    if kind == "legacy" and url:
        return Pin(name, version, hashes, indexes=only_index(url, str(origin.get("reference", ""))))
    return Pin(name, version, hashes)


def _python(constraint: str | None) -> str | None:
    return str(pep440_specifier(constraint)) if constraint else None


def _extra_names(package: Mapping[str, Any], extras: Iterable[str]) -> set[str]:
    names: set[str] = set()
    for extra in extras:
        for item in package.get("extras", {}).get(extra, []):
            names.add(canonicalize_name(item.split("(")[0].split("[")[0].strip()))
    return names


# --------------------------------------------------------------------------- the manifest


def roots(pyproject: Mapping[str, Any], groups: Collection[str], source: str) -> list[Dependency]:
    """What a Poetry project asks for: main dependencies, the groups and extras named."""
    poetry = pyproject.get("tool", {}).get("poetry", {})
    project = pyproject.get("project", {})
    main = table_dependencies(poetry.get("dependencies", {}), source)
    main += [_as_dependency(line, source) for line in project.get("dependencies", [])]
    tables: dict[str, list[Dependency]] = {}
    for name, group in poetry.get("group", {}).items():
        tables[name] = table_dependencies(group.get("dependencies", {}), source)
    if "dev-dependencies" in poetry:
        tables.setdefault("dev", table_dependencies(poetry["dev-dependencies"], source))
    for name, lines in project.get("optional-dependencies", {}).items():
        tables[name] = [_as_dependency(line, source) for line in lines]
    extras = {
        name: set(map(canonicalize_name, items)) for name, items in poetry.get("extras", {}).items()
    }
    unknown = [g for g in groups if g not in tables and g not in extras]
    if unknown:
        known = ", ".join(sorted({*tables, *extras})) or "none"
        raise ProjectError(f"{source} has no group or extra {unknown[0]!r}; it has: {known}")
    wanted = {name for group in groups for name in extras.get(group, ())}
    chosen = [d for d in main if not d.optional or d.name in wanted]
    for group in groups:
        chosen += tables.get(group, [])
    return chosen


def _as_dependency(line: str, source: str) -> Dependency:
    requirement = parse_requirement(line, source)
    return Dependency(
        name=canonicalize_name(requirement.name),
        specifier=requirement.specifier,
        marker=str(requirement.marker) if requirement.marker else None,
        python=None,
        extras=tuple(sorted(requirement.extras)),
        optional=False,
        local=requirement.url,
        url=requirement.url,
    )


def marker_of(dependency: Dependency) -> Marker | None:
    """A dependency's markers and Python constraint, as one PEP 508 marker."""
    parts = [f"({dependency.marker})"] if dependency.marker else []
    if dependency.python:
        for item in pep440_specifier(dependency.python):
            parts.append(f"python_full_version {item.operator} '{item.version}'")
    return Marker(" and ".join(parts)) if parts else None


def requirement_lines(
    pyproject: Mapping[str, Any], groups: Collection[str], source: str
) -> list[str]:
    """A Poetry project without a lock: its dependencies as PEP 508 lines, to resolve."""
    lines = []
    for dependency in roots(pyproject, groups, source):
        if dependency.local and dependency.url is None:
            raise ProjectError(
                f"{source}: {dependency.name} comes from {dependency.local}, not a package "
                "index; kitbuild installs packages by name and version only"
            )
        extras = f"[{','.join(dependency.extras)}]" if dependency.extras else ""
        marker = marker_of(dependency)
        wanted = f" @ {dependency.url} " if dependency.url else str(dependency.specifier)
        line = f"{dependency.name}{extras}{wanted}" + (f"; {marker}" if marker else "")
        lines.append(line.strip())
    return lines


def group_lines(data: Mapping[str, Any], source: str) -> dict[str, tuple[str, ...]]:
    """Each group's and extra's lines beyond the main ones, for ``--group`` without a lock."""
    poetry = data.get("tool", {}).get("poetry", {})
    names = [*poetry.get("group", {}), *poetry.get("extras", {})]
    names += ["dev"] if "dev-dependencies" in poetry else []
    names += list(data.get("project", {}).get("optional-dependencies", {}))
    main = set(requirement_lines(data, (), source))
    return {
        name: tuple(line for line in requirement_lines(data, [name], source) if line not in main)
        for name in dict.fromkeys(names)
    }
