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
#: build stage, and the libraries the compiled module then loads at run time (bookworm's
#: names; :data:`RENAMED` has the suites where a library is called otherwise). uwsgi is
#: not here: it compiles on the build base as it is, and needs only libpython3.X to run.
HEADERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "psycopg2": (("libpq-dev",), ("libpq5",)),
    "python-ldap": (("libldap2-dev", "libsasl2-dev"), ("libldap-2.5-0",)),
    "pycurl": (("libcurl4-openssl-dev", "libssl-dev"), ("libcurl4",)),
    "xmlsec": (("libxmlsec1-dev", "libxml2-dev"), ("libxmlsec1-openssl",)),
    "pygraphviz": (("libgraphviz-dev",), ("libcgraph6", "libgvc6")),
}
#: Runtime libraries renamed in later suites (OpenLDAP 2.6, the 64-bit time_t transition).
RENAMED: dict[str, dict[str, str]] = {
    "trixie": {
        "libldap-2.5-0": "libldap2",
        "libcurl4": "libcurl4t64",
        "libxmlsec1-openssl": "libxmlsec1t64-openssl",
    },
}

_NAME = r"([A-Za-z0-9][A-Za-z0-9._-]*)"
_FAILED_BUILDS = (
    # uv, the build stage's installer: "Failed to build `python-ldap==3.4.4`"
    re.compile(rf"Failed to build `{_NAME}"),
    re.compile(rf"Failed building wheel for {_NAME}"),
    # "Failed to build a b" (pip < 24.1), not "Failed to build installable wheels ..."
    re.compile(r"^\s*(?:ERROR: )?Failed to build (?!installable )([^\n]+)$", re.MULTILINE),
    re.compile(rf"Could not build wheels for {_NAME}"),
    # pip 23's legacy `setup.py install` (no wheel package in the venv), as on bookworm
    re.compile(rf"Running setup\.py install for {_NAME}: finished with status 'error'"),
    re.compile(rf"Encountered error while trying to install package\.\s*\n\s*\W*\s*{_NAME}"),
    re.compile(
        r"Failed to build installable wheels for some pyproject\.toml based projects \(([^)]*)\)"
    ),
)
_PROCESSING = re.compile(
    r"Processing /kitbuild/wheels/([A-Za-z0-9_.]+?)-\d[^/\s]*\.(?:tar\.gz|zip)"
)


#: The classic builder colours a step's stderr: ESC[91m ... ESC[0m around each chunk.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def plain(output: str) -> str:
    """The build's output without terminal colour codes."""
    return _ANSI.sub("", output)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def failed_compiles(output: str) -> list[str]:
    """The source packages uv (or pip) says it could not build, canonical names, in order."""
    output = plain(output)
    names: list[str] = []
    for pattern in _FAILED_BUILDS:
        for match in pattern.finditer(output):
            names.extend(re.split(r"[,\s]+", match.group(1).strip()))
    if not names and "metadata-generation-failed" in output:
        # The package's setup.py failed before pip names it: the last sdist it opened.
        opened = _PROCESSING.findall(output)
        names.extend(opened[-1:])
    return list(dict.fromkeys(_canonical(name) for name in names if name))


def compile_hint(output: str, suite: str | None) -> str | None:
    """A phrase naming the Debian packages to add, when a known package failed to compile.

    ``suite`` is the Debian suite of kitbuild's bases, or None for a user's base image,
    which must then carry the packages itself.
    """
    renamed = RENAMED.get(suite or "", {})
    advice = []
    for name in failed_compiles(output):
        build, runtime = HEADERS.get(name, ((), ()))
        if not build:
            continue
        runtime = tuple(renamed.get(package, package) for package in runtime)
        if suite is None:
            advice.append(
                f"{name} needs system headers to compile: install {' '.join(build)} "
                f"(and {' '.join(runtime)} to run) in your base image"
            )
            continue
        flags = " ".join(f"--build-package {package}" for package in build)
        flags += "".join(f" --runtime-package {package}" for package in runtime)
        advice.append(f"{name} needs system headers to compile: add {flags}")
    if not advice:
        return None
    tail = "" if suite is None else " (or build-packages/runtime-packages in [tool.kitbuild])"
    return "; ".join(advice) + tail


def failed_step(output: str) -> str | None:
    """The build step kitbuild_runtime.buildsteps said failed (its last such line), if any."""
    found = [line for line in plain(output).splitlines() if line.startswith(FAILED)]
    return found[-1][len(FAILED) :].strip() if found else None
