"""Pipfile.lock: Pipenv's lock, a JSON object of package sections (``default``, ``develop``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from builder.errors import LockError, ProjectError
from builder.image.locks.format import LockFile, Selection, parse_toml
from builder.image.locks.pins import (
    Direct,
    Pin,
    check_groups,
    check_manifest,
    marker_holds,
    sorted_pins,
)
from builder.image.locks.sources import check_direct, git_reference, only_index

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from builder.image.locks.format import Declared
    from builder.image.locks.pins import Target


class PipfileLock(LockFile):
    """``Pipfile.lock``, checked against the Pipfile beside it when there is one."""

    name = "Pipfile.lock"
    found_by = ("Pipfile.lock",)
    manifest = "Pipfile"

    def locked_names(self, text: str, source: str) -> list[str]:
        """Every pinned ``name==version`` of the ``default`` section, whatever the markers."""
        return [
            f"{name}{entry['version']}"
            for name, entry in _json(text, source).get("default", {}).items()
            if str(entry.get("version", "")).startswith("==")
        ]

    def requires_python(self, declared: Declared) -> str | None:
        """The ``_meta.requires`` Python: a full version exactly, ``3.11`` as ``==3.11.*``."""
        requires = _json(declared.text, declared.source).get("_meta", {}).get("requires", {})
        version = requires.get("python_full_version") or requires.get("python_version")
        if not version:
            return None
        return f"=={version}.*" if version.count(".") < 2 else f"=={version}"

    def select(self, declared: Declared, target: Target, groups: Collection[str]) -> Selection:
        """The sections asked for, checked against the Pipfile's packages when it is there."""
        pins = parse_lock(declared.text, target, list(groups), declared.source)
        if declared.manifest is not None:
            pipfile = parse_toml(declared.manifest_text, declared.manifest)
            sections = [
                "packages",
                *("dev-packages" if g in ("dev", "develop") else g for g in groups),
            ]
            direct = [
                item
                for section in sections
                for item in _pipfile_direct(pipfile.get(section, {}), declared.manifest)
            ]
            check_manifest(pins, direct, target, declared.source, declared.manifest)
        return Selection(pins=tuple(pins))


FORMAT = PipfileLock()


def parse_lock(text: str, target: Target, categories: Sequence[str], lock: str) -> list[Pin]:
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
    check_groups(sections, [k for k in data if not k.startswith("_")], lock)
    sources = data.get("_meta", {}).get("sources", [])
    chosen: dict[str, Pin] = {}
    for section in sections:
        for raw_name, entry in data[section].items():
            name = canonicalize_name(raw_name)
            if not marker_holds(entry.get("markers"), target, lock) or name in chosen:
                continue
            chosen[name] = _pin(name, entry, sources, lock)
    return sorted_pins(chosen.values())


def _pin(name: str, entry: Mapping[str, Any], sources: Sequence[Any], lock: str) -> Pin:
    """A locked entry: a version (from its index), a git repository at a ref, or a file URL.

    Pipenv's first source is its default: its packages come from the index you configured;
    a package locked from another source is fetched from that one.
    """
    version = str(entry.get("version", ""))
    hashes = tuple(entry.get("hashes", ()))
    if "git" in entry and not entry.get("editable"):
        url = git_reference(str(entry["git"]), entry.get("ref"), entry.get("subdirectory"))
        check_direct(url, f"{lock}: {name}")
        return Pin(name, version.removeprefix("=="), url=url)
    if "file" in entry and "://" in str(entry["file"]) and not entry.get("editable"):
        url = str(entry["file"])
        check_direct(url, f"{lock}: {name}")
        return Pin(name, version.removeprefix("=="), hashes, url=url)
    if not version.startswith("=="):
        raise LockError(
            f"{lock}: {name} is not pinned to a version (a path or editable entry?); "
            "kitbuild installs packages by name and version only"
        )
    named = [s for s in sources if isinstance(s, dict) and s.get("name") == entry.get("index")]
    if named and named[0] is not sources[0] and named[0].get("url"):
        index = only_index(str(named[0]["url"]), str(named[0]["name"]))
        return Pin(name, version[2:], hashes, indexes=index)
    return Pin(name, version[2:], hashes)


def _same_python(wanted: str, target: Target, *, full: bool) -> bool:
    have = target.python.split(".")
    parts = wanted.split(".")
    return have[: len(parts)] == parts if full or len(parts) < 3 else have == parts


def _pipfile_direct(table: Mapping[str, Any], source: str) -> list[Direct]:
    found = []
    for name, value in table.items():
        spec = {"version": value} if isinstance(value, str) else dict(value)
        version = str(spec.get("version", "*")).strip()
        marker = spec.get("markers")
        found.append(
            Direct(
                canonicalize_name(name),
                SpecifierSet("" if version == "*" else version),
                Marker(marker) if marker else None,
            )
        )
    return found


def _json(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProjectError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{source}: not a JSON object; is this Pipenv's lock?")
    return data
