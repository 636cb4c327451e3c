"""Hints the build gives: a development settings default, headers a compile needed.

Pure functions over file names and build output, plus one reader (the settings package's
file names), so each is tested without Docker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from kitbuild_runtime.buildsteps import FAILED

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

#: Name parts that say a settings module is for a developer's machine.
DEVELOPMENT = frozenset({"dev", "devel", "develop", "development", "local", "debug"})
#: Name parts that say a settings module is the one to deploy.
PRODUCTION = ("production", "prod", "live")


def _parts(module_leaf: str) -> set[str]:
    return set(re.split(r"[_\-.]", module_leaf.lower()))


def production_sibling(default_module: str, siblings: Iterable[str]) -> str | None:
    """The production-looking module beside a development-looking default, if there is one.

    ``siblings`` are the module names (without .py) in the default's package directory.
    ``config.settings.dev`` with ``production`` beside it gives ``config.settings.production``;
    ``mysite.settings_local`` with ``settings_prod`` gives ``mysite.settings_prod``.
    """
    package, _, leaf = default_module.rpartition(".")
    if not _parts(leaf) & DEVELOPMENT:
        return None
    candidates = sorted(
        name
        for name in siblings
        if name != leaf and any(word in _parts(name) for word in PRODUCTION)
    )
    if not candidates:
        return None
    # The closest spelling first: settings_prod beside settings_dev, production in a package.
    stem = _parts(leaf) - DEVELOPMENT
    best = min(candidates, key=lambda name: (_parts(name) - set(PRODUCTION) != stem, len(name)))
    return f"{package}.{best}" if package else best


def settings_hint(app_dir: Path, default_module: str) -> str | None:
    """One line when manage.py defaults to development settings and production ones exist."""
    directory = app_dir.joinpath(*default_module.split(".")[:-1])
    for base in (app_dir, app_dir / "src"):
        candidate = base.joinpath(*default_module.split(".")[:-1])
        if candidate.is_dir():
            directory = candidate
            break
    if not directory.is_dir():
        return None
    siblings = [
        path.stem if path.suffix == ".py" else path.name
        for path in directory.iterdir()
        if (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file()
    ]
    found = production_sibling(default_module, siblings)
    if found is None:
        return None
    return (
        f"kitbuild: note: manage.py defaults to {default_module}, which looks like development "
        f"settings, and {found} is beside it; to build with it, pass --settings {found} "
        "(or settings in [tool.kitbuild])"
    )


#: Source-only packages that compile against Debian headers: the packages to add to the
#: build stage, and the libraries the compiled module then loads at run time.
HEADERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "psycopg2": (("libpq-dev",), ("libpq5",)),
    "python-ldap": (("libldap2-dev", "libsasl2-dev"), ("libldap-2.5-0",)),
    "pycurl": (("libcurl4-openssl-dev", "libssl-dev"), ("libcurl4",)),
    "uwsgi": (
        ("libssl-dev", "libpcre2-dev", "libxml2-dev"),
        ("libssl3", "libpcre2-8-0", "libxml2"),
    ),
    "xmlsec": (("libxmlsec1-dev", "libxml2-dev", "pkgconf"), ("libxmlsec1-openssl",)),
    "python-magic": ((), ("libmagic1",)),
    "pygraphviz": (("libgraphviz-dev",), ("libcgraph6", "libgvc6")),
    "mysqlclient": ((), ()),
}

_NAME = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
_FAILED_BUILDS = (
    re.compile(rf"Failed building wheel for {_NAME}"),
    re.compile(rf"Failed to build {_NAME}"),
    re.compile(rf"Could not build wheels for {_NAME}"),
    re.compile(rf"Building wheel for {_NAME} \(.*\) \.\.\. error"),
    re.compile(
        r"Failed to build installable wheels for some pyproject\.toml based projects \(([^)]*)\)"
    ),
)
_PROCESSING = re.compile(
    r"Processing /kitbuild/wheels/([A-Za-z0-9_.]+?)-\d[^/\s]*\.(?:tar\.gz|zip)"
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def failed_compiles(output: str) -> list[str]:
    """The source packages pip says it could not build, canonical names, in order."""
    names: list[str] = []
    for pattern in _FAILED_BUILDS:
        for match in pattern.finditer(output):
            names.extend(part.strip() for part in match.group(1).split(","))
    if not names and "metadata-generation-failed" in output:
        # The package's setup.py failed before pip names it: the last sdist it opened.
        opened = _PROCESSING.findall(output)
        names.extend(opened[-1:])
    return list(dict.fromkeys(_canonical(name) for name in names if name))


def compile_hint(output: str) -> str | None:
    """A phrase naming the Debian packages to add, when a known package failed to compile."""
    advice = []
    for name in failed_compiles(output):
        build, runtime = HEADERS.get(name, ((), ()))
        if not build:
            continue
        flags = " ".join(f"--build-package {package}" for package in build)
        flags += "".join(f" --runtime-package {package}" for package in runtime)
        advice.append(f"{name} needs system headers to compile: add {flags}")
    if not advice:
        return None
    return "; ".join(advice) + " (or build-packages/runtime-packages in [tool.kitbuild])"


def failed_step(output: str) -> str | None:
    """The build step kitbuild_runtime.buildsteps said failed (its last such line), if any."""
    found = [line for line in output.splitlines() if line.startswith(FAILED)]
    return found[-1][len(FAILED) :].strip() if found else None
