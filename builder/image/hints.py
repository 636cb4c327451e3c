"""Hints the build gives: a development settings default, headers a compile needed.

Pure functions over file names and build output, plus one reader (the settings package's
file names), so each is tested without Docker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from builder.image.project import parse_settings_module
from kitbuild_runtime.buildsteps import FAILED

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

#: Name parts that say a settings module is for a developer's machine.
DEVELOPMENT = frozenset({"dev", "devel", "develop", "development", "local", "debug"})
#: Name parts that say a settings module is the one to deploy (any part starting "prod"
#: counts too: prod, product, production, prod_settings).
PRODUCTION = frozenset({"deploy", "deployment", "live", "docker", "server"})

#: Production names that say "settings" alone, outside a settings package.
_ALONE = frozenset({"prod", "production", "deploy", "deployment", "live"})


def _parts(module_leaf: str) -> set[str]:
    return set(re.split(r"[_\-.]", module_leaf.lower()))


def looks_like_production(module_leaf: str) -> bool:
    """``production``, ``prod_settings``, ``product``, ``deploy``, ``settings_live`` ..."""
    return any(part.startswith("prod") or part in PRODUCTION for part in _parts(module_leaf))


def looks_like_development(module_leaf: str) -> bool:
    """``dev``, ``local``, ``settings_dev`` ..."""
    return bool(_parts(module_leaf) & DEVELOPMENT)


def production_candidates(
    default_module: str, siblings: Iterable[str], *, in_settings_package: bool
) -> list[str]:
    """Production-looking modules beside a default that does not look like production.

    ``siblings`` are the module names (without .py) in the default's package directory.
    Outside a settings package (``mysite.settings`` beside ``urls`` and ``products``) only
    names that also say "settings", or are a production word alone, count. The closest
    spelling comes first (settings_prod beside settings_dev), then by length and name.
    """
    package, _, leaf = default_module.rpartition(".")
    if looks_like_production(leaf):
        return []
    names = [
        name
        for name in siblings
        if name != leaf
        and looks_like_production(name)
        and not looks_like_development(name)
        and (in_settings_package or "settings" in _parts(name) or name.lower() in _ALONE)
    ]
    stem = _parts(leaf) - DEVELOPMENT
    names.sort(key=lambda name: (_parts(name) - {"prod", *PRODUCTION} != stem, len(name), name))
    return [f"{package}.{name}" if package else name for name in names]


def production_sibling(default_module: str, siblings: Iterable[str]) -> str | None:
    """The first production-looking module beside a development-looking default, if any."""
    leaf = default_module.rpartition(".")[2]
    if not looks_like_development(leaf):
        return None
    found = production_candidates(default_module, siblings, in_settings_package=True)
    return found[0] if found else None


def _modules_in(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(
        path.stem if path.suffix == ".py" else path.name
        for path in directory.iterdir()
        if (path.suffix == ".py" and path.is_file()) or (path / "__init__.py").is_file()
    )


def _package_dir(app_dir: Path, dotted: str) -> Path | None:
    for base in (app_dir, app_dir / "src"):
        candidate = base.joinpath(*dotted.split(".")) if dotted else base
        if candidate.is_dir():
            return candidate
    return None


def settings_hint(app_dir: Path, default_module: str, wsgi_module: str | None = None) -> str | None:
    """One line when other settings look more like the production ones than the default.

    The candidates: the module the WSGI module (``wsgi_module``, dotted) sets, when it
    differs from manage.py's default; production-looking modules beside the default; and,
    when the default is a settings package, production-looking modules inside it.
    """
    package, _, leaf = default_module.rpartition(".")
    candidates: list[str] = []
    from_wsgi = None
    if wsgi_module:
        path = _module_path(app_dir, wsgi_module)
        text = path.read_text(encoding="utf-8", errors="replace") if path else ""
        from_wsgi = parse_settings_module(text)
        if from_wsgi == default_module:
            from_wsgi = None
    if from_wsgi:
        candidates.append(from_wsgi)
    directory = _package_dir(app_dir, package)
    if directory is not None:
        in_settings_package = "settings" in _parts(package.rpartition(".")[2])
        candidates += production_candidates(
            default_module, _modules_in(directory), in_settings_package=in_settings_package
        )
    inside = _package_dir(app_dir, default_module)
    if inside is not None and (inside / "__init__.py").is_file():
        children = production_candidates(
            f"{default_module}.__init__", _modules_in(inside), in_settings_package=True
        )
        candidates += [name.replace(".__init__.", ".") for name in children]
    candidates = list(dict.fromkeys(candidates))
    if not candidates:
        return None
    flag = "(or settings in [tool.kitbuild])"
    if from_wsgi:
        others = f"; also beside it: {', '.join(candidates[1:])}" if candidates[1:] else ""
        return (
            f"kitbuild: note: manage.py defaults to {default_module}, but {wsgi_module} sets "
            f"{from_wsgi}{others}; kitbuild builds and serves {default_module}; to build "
            f"with {from_wsgi}, pass --settings {from_wsgi} {flag}"
        )
    kind = ", which looks like development settings," if looks_like_development(leaf) else ""
    if len(candidates) == 1:
        return (
            f"kitbuild: note: manage.py defaults to {default_module}{kind} and "
            f"{candidates[0]} is beside it; to build with it, pass --settings "
            f"{candidates[0]} {flag}"
        )
    return (
        f"kitbuild: note: manage.py defaults to {default_module}{kind} and these look like "
        f"production settings: {', '.join(candidates)}; to build with one, pass "
        f"--settings MODULE {flag}"
    )


def _module_path(app_dir: Path, dotted: str) -> Path | None:
    parts = dotted.split(".")
    for base in (app_dir, app_dir / "src"):
        for candidate in (
            base.joinpath(*parts).with_suffix(".py"),
            base.joinpath(*parts, "__init__.py"),
        ):
            if candidate.is_file():
                return candidate
    return None


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
