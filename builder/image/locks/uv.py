"""uv.lock: uv's lock, walked from the project's own package for the image's Python."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.errors import LockError
from builder.image.locks.format import (
    LockFile,
    Selection,
    check_against_project,
    parse_requirement,
    parse_toml,
    project_dependencies,
)
from builder.image.locks.pins import (
    PackageIndex,
    Pin,
    check_groups,
    check_installable,
    check_python,
    marker_holds,
    sorted_pins,
)
from builder.image.locks.sources import (
    check_direct,
    filename_of,
    only_index,
    same_index,
    uv_git,
    uv_indexes,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from builder.image.locks.format import Declared
    from builder.image.locks.pins import Target


class UvLock(LockFile):
    """``uv.lock``, beside the pyproject.toml it was locked from and must still match."""

    name = "uv.lock"
    found_by = ("uv.lock",)
    manifest = "pyproject.toml"
    manifest_required = True

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The lock's pins for the target, once pyproject.toml's dependencies are all in it.

        A package from an index ``[[tool.uv.index]]`` declares is fetched from that index.
        """
        manifest = parse_toml(declared.manifest_text, declared.manifest or "pyproject.toml")
        pins = parse_lock(declared.text, target, groups, declared.source, uv_indexes(manifest))
        if declared.manifest is not None:
            lines = project_dependencies(declared)
            recorded = {
                canonicalize_name(Requirement(line).name)
                for line in manifest_requirements(declared.text, declared.source)
            }
            for line in lines:
                name = canonicalize_name(parse_requirement(line, declared.manifest).name)
                if name not in recorded:
                    raise LockError(
                        f"{declared.source} does not match {declared.manifest}: {name} is not "
                        "in the lock; re-lock the project (uv lock)"
                    )
        check_against_project(pins, declared, target)
        return Selection(pins=tuple(pins))


FORMAT = UvLock()


def parse_lock(
    text: str,
    target: Target,
    groups: Collection[str],
    lock: str,
    indexes: Sequence[PackageIndex] = (),
) -> list[Pin]:
    """The packages uv.lock installs for the target: the root project's dependencies, walked.

    ``indexes`` are those the project declares: a package locked from one is fetched from it.
    """
    data = parse_toml(text, lock, LockError)
    check_python(data.get("requires-python"), target, lock, "requires-python")
    packages: list[dict[str, Any]] = data.get("package", [])
    roots = [p for p in packages if _local_source(p.get("source", {})) == "."]
    if len(roots) != 1:
        raise LockError(f"{lock}: no project package with source '.'; is this uv's lock?")
    root = roots[0]
    optional = root.get("optional-dependencies", {})
    dev = root.get("dev-dependencies", {})
    check_groups(groups, [*optional, *dev], lock)
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
        package = _package(by_name.get(name, []), dependency, target, lock)
        source = package.get("source", {})
        if package is not root and _local_source(source) is not None and not _remote(source):
            raise LockError(
                f"{lock}: {name} comes from {_local_source(source)}, not a package index; "
                "kitbuild installs packages by name and version only"
            )
        if "version" not in package:
            raise LockError(f"{lock}: {name} has no version (a path or VCS source?)")
        wheels = package.get("wheels", [])
        sdist = package.get("sdist")
        if name not in chosen:
            check_installable(
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
            chosen[name] = _pin(
                name, package["version"], tuple(hashes), source, indexes=indexes, lock=lock
            )
            pending += [(d, "") for d in package.get("dependencies", [])]
        for extra in dependency.get("extra", []):
            if (name, extra) not in extras_done:
                extras_done.add((name, extra))
                pending += [
                    (d, "") for d in package.get("optional-dependencies", {}).get(extra, [])
                ]
    return sorted_pins(chosen.values())


def _package(
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


def manifest_requirements(text: str, lock: str) -> list[str]:
    """The root's requires-dist as uv recorded it when locking (to compare with the manifest)."""
    for package in parse_toml(text, lock, LockError).get("package", []):
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


def _remote(source: Mapping[str, Any]) -> bool:
    """A git repository or an archive URL: fetched on the host, unlike a local path."""
    return "git" in source or "url" in source


def _pin(
    name: str,
    version: str,
    hashes: tuple[str, ...],
    source: Mapping[str, Any],
    *,
    indexes: Sequence[PackageIndex],
    lock: str,
) -> Pin:
    """A locked package: by name from an index (a declared one's own), or by its git or URL."""
    if "git" in source:
        url = uv_git(str(source["git"]))
        check_direct(url, f"{lock}: {name}")
        return Pin(name, version, url=url)
    if "url" in source:
        return Pin(name, version, hashes, url=str(source["url"]))
    registry = str(source.get("registry", ""))
    named = next((i for i in indexes if registry and same_index(i.url, registry)), None)
    return Pin(name, version, hashes, indexes=only_index(named.url, named.name) if named else ())


def _filename(url: str) -> str:
    return filename_of(url)
