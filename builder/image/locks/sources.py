"""Where a package comes from when it is not fetched by name from the configured index.

A project may name a package by a direct reference (PEP 508 ``name @ url``): a git
repository at a commit (``git+https://host/repo.git@<commit>``) or an archive's URL. It
may also name the indexes its packages come from: a requirements file's ``--index-url``,
uv's ``[[tool.uv.index]]``, Poetry's ``[[tool.poetry.source]]``, Pipfile's ``[[source]]``.
The formats read them into :class:`~builder.image.locks.pins.Pin` and
:class:`~builder.image.locks.pins.PackageIndex` with the helpers here; fetching them is
:mod:`builder.image.wheelhouse`'s business. Text only: nothing is expanded or fetched.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from builder.errors import LockError
from builder.image.locks.pins import PackageIndex

if TYPE_CHECKING:
    from collections.abc import Mapping

    from builder.errors import KitError

#: Version control systems pip knows; kitbuild builds from git only.
_OTHER_VCS = ("hg+", "svn+", "bzr+")
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def strip_userinfo(text: str) -> str:
    """``text`` with every URL's user and password removed, for messages and records."""
    return _USERINFO.sub("", text)


def filename_of(url: str) -> str:
    """The file name a URL's path ends with, percent-decoded (``torch-2.1%2Bcpu`` is ``+cpu``)."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def is_vcs(url: str) -> bool:
    """Whether a direct reference names a version control repository."""
    return url.startswith(("git+", *_OTHER_VCS))


def check_direct(url: str, what: str, error: type[KitError] = LockError) -> None:
    """Refuse a direct reference kitbuild cannot fetch: another VCS than git, or a local path."""
    if url.startswith(_OTHER_VCS):
        raise error(
            f"{what} comes from {strip_userinfo(url)}; kitbuild builds VCS requirements from "
            "git repositories only: publish a wheel, or use git"
        )
    if url.startswith("file:") and not url.startswith("file:///"):
        raise error(f"{what} comes from the relative path {url}; name it by version instead")


def git_reference(repository: str, commit: str | None, subdirectory: str | None = None) -> str:
    """A git repository at a ref as the PEP 508 URL pip reads: ``git+URL@REF#subdirectory=``."""
    url = repository if repository.startswith("git+") else f"git+{repository}"
    if commit:
        url += f"@{commit}"
    return url + (f"#subdirectory={subdirectory}" if subdirectory else "")


def uv_git(value: str) -> str:
    """uv.lock's ``git = "https://host/repo.git?tag=v1&subdirectory=s#<commit>"``, for pip."""
    base, _, commit = value.partition("#")
    parts = urlsplit(base)
    query = parse_qs(parts.query)
    requested = next((query[key][0] for key in ("rev", "tag", "branch") if key in query), None)
    subdirectory = query.get("subdirectory", [None])[0]
    return git_reference(urlunsplit(parts._replace(query="")), commit or requested, subdirectory)


# --------------------------------------------------------------------------- indexes


def uv_indexes(pyproject: Mapping[str, Any]) -> tuple[PackageIndex, ...]:
    """``[[tool.uv.index]]``: the one marked ``default`` replaces the configured index."""
    found = []
    for entry in pyproject.get("tool", {}).get("uv", {}).get("index", []):
        if isinstance(entry, dict) and entry.get("url"):
            kind = "index" if entry.get("default") else "extra"
            found.append(PackageIndex(str(entry["url"]), kind, str(entry.get("name", ""))))
    return tuple(found)


def poetry_sources(pyproject: Mapping[str, Any]) -> tuple[PackageIndex, ...]:
    """``[[tool.poetry.source]]``: the first primary source replaces the configured index.

    Poetry stops using its default index once a primary source is declared, unless a source
    without a URL (its own default, by name) is declared as well.
    """
    entries = [
        entry
        for entry in pyproject.get("tool", {}).get("poetry", {}).get("source", [])
        if isinstance(entry, dict)
    ]
    keeps_default = any(not entry.get("url") for entry in entries)
    found: list[PackageIndex] = []
    for entry in entries:
        if not entry.get("url"):
            continue
        primary = entry.get("priority", "primary") in ("primary", "default")
        replaces = primary and not keeps_default and not any(i.kind == "index" for i in found)
        kind = "index" if replaces else "extra"
        found.append(PackageIndex(str(entry["url"]), kind, str(entry.get("name", ""))))
    return tuple(found)


def same_index(left: str, right: str) -> bool:
    """Whether two index URLs name the same index (a trailing slash aside)."""
    return left.rstrip("/") == right.rstrip("/")


def only_index(url: str, name: str = "") -> tuple[PackageIndex, ...]:
    """A locked package's own index: it is fetched from there alone."""
    return (PackageIndex(url, "index", name),)
