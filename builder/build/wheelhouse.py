"""Fetch a project's dependencies on the host, for the image's Python, into a wheelhouse.

The image then installs with ``pip --no-index``: the build needs no network, which is
what air-gapped sites and corporate proxies need. Packages with no wheel for the
image's platform are fetched as source, with their build requirements, and compiled in
the image's build stage.
"""

from __future__ import annotations

import dataclasses
import email.parser
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import KitError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from builder.engine import DockerGateway


class ResolveError(KitError):
    """A requirement cannot be fetched for the image's Python and platform."""


@dataclasses.dataclass(frozen=True)
class Target:
    """The Python an image runs: what pip needs to pick the right wheels."""

    python: str  # "3.11"
    abi: str  # "cp311"
    implementation: str  # "cp"
    platforms: tuple[str, ...]  # newest first, e.g. manylinux_2_36_x86_64 ... linux_x86_64

    def pip_flags(self) -> list[str]:
        """Pip download flags that select wheels for this target instead of the host."""
        flags = [
            f"--python-version={self.python}",
            f"--implementation={self.implementation}",
            f"--abi={self.abi}",
        ]
        # pip does not expand manylinux_2_X to older tags by itself: list every one.
        return flags + [f"--platform={platform}" for platform in self.platforms]


_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def target_for(python: str, glibc: str, machine: str) -> Target:
    """The target of a kit base image, from its Python and glibc versions (no Docker needed).

    Lists platform tags the way pip's packaging.tags does for that glibc: every
    manylinux_2_Y from the glibc's minor down to 5, with the legacy aliases, then linux.
    """
    major, minor = (int(part) for part in glibc.split("."))
    platforms: list[str] = []
    for older in range(minor, 4, -1):
        platforms.append(f"manylinux_{major}_{older}_{machine}")
        legacy = _LEGACY_MANYLINUX.get((major, older))
        if legacy:
            platforms.append(f"{legacy}_{machine}")
    platforms.append(f"linux_{machine}")
    digits = python.replace(".", "")
    return Target(python=python, abi=f"cp{digits}", implementation="cp", platforms=tuple(platforms))


# Runs inside the build image, offline: pip's own tag logic says what wheels it accepts.
_TARGET_PROBE = (
    "import json, sys; from pip._vendor.packaging import tags;"
    "t = list(tags.sys_tags());"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
    " 'abi': t[0].abi, 'implementation': t[0].interpreter[:2],"
    " 'platforms': list(dict.fromkeys(x.platform for x in t if x.platform != 'any'))}))"
)


def probe_target(gateway: DockerGateway, image: str) -> Target:
    """Ask the image's own Python (in a throwaway, networkless container) what it accepts."""
    script = f'python3 -m venv /tmp/kit-probe && /tmp/kit-probe/bin/python -c "{_TARGET_PROBE}"'
    try:
        output = gateway.run(image, ["sh", "-c", script], network_mode="none")
    except KitError as error:
        raise ResolveError(
            f"cannot run python3 -m venv in {image} ({error}); a base image needs "
            "python3 with venv (Debian: python3-venv)"
        ) from None
    data = json.loads(output.decode().strip().splitlines()[-1])
    return Target(
        python=data["python"],
        abi=data["abi"],
        implementation=data["implementation"],
        platforms=tuple(data["platforms"]),
    )


PipRunner = Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]


def run_pip(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the host's pip with ``args``; the default :data:`PipRunner`."""
    command = [sys.executable, "-m", "pip", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


_NOT_FOUND = re.compile(
    r"(?:No matching distribution found for|"
    r"Could not find a version that satisfies the requirement) (\S+)"
)

# mysqlclient's setup.py asks pkg-config for MySQL headers even to report its metadata;
# the host need not have them (the image's build stage does), so answer for it.
_SOURCE_ENV = {"MYSQLCLIENT_CFLAGS": "-I/nonexistent", "MYSQLCLIENT_LDFLAGS": "-lmariadb"}


@dataclasses.dataclass(frozen=True)
class Wheelhouse:
    """What was fetched: the directory and the names built from source in the image."""

    directory: Path
    from_source: tuple[str, ...]

    def version_of(self, name: str) -> str | None:
        """The version of ``name`` in the wheelhouse, from its file name."""
        wanted = canonicalize_name(name)
        for path in self.directory.iterdir():
            match = re.match(r"^(.+?)-(\d[^-]*?)(?:-|\.tar\.gz$|\.zip$)", path.name)
            if match and canonicalize_name(match.group(1)) == wanted:
                return match.group(2)
        return None


def fetch(
    requirements: Sequence[str],
    target: Target,
    directory: Path,
    *,
    pip: PipRunner = run_pip,
    say: Callable[[str], None] = print,
) -> Wheelhouse:
    """Download ``requirements`` and all their dependencies for ``target`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    base = [
        "download",
        "--dest",
        str(directory),
        "--progress-bar=off",
        "--disable-pip-version-check",
    ]
    env = dict(os.environ)
    binary = list(requirements)
    source: list[str] = []
    while binary:  # what is left once every source-only package has been set aside
        result = pip([*base, "--only-binary=:all:", *target.pip_flags(), *binary], env)
        if result.returncode == 0:
            break
        name = _missing_name(result)
        requirement = _find_requirement(binary, name)
        if requirement is None:
            raise ResolveError(_pip_failure(result, target, name))
        say(f"kitbuild: no wheel of {requirement} for Python {target.python}; fetching its source")
        fetched = pip(
            [*base, "--no-deps", "--no-binary=:all:", *target.pip_flags(), requirement],
            {**env, **_SOURCE_ENV},
        )
        if fetched.returncode != 0:
            raise ResolveError(_pip_failure(fetched, target, requirement))
        binary.remove(requirement)
        source.append(requirement)
        extra = _source_requirements(directory, requirement)
        binary.extend(line for line in extra.runtime if line not in binary)
        if extra.build:
            built = pip([*base, "--only-binary=:all:", *target.pip_flags(), *extra.build], env)
            if built.returncode != 0:
                raise ResolveError(
                    _pip_failure(built, target, "build requirements of " + requirement)
                )
    return Wheelhouse(directory, tuple(canonicalize_name(Requirement(r).name) for r in source))


def _missing_name(result: subprocess.CompletedProcess[str]) -> str | None:
    match = _NOT_FOUND.search(result.stderr + result.stdout)
    return match.group(1) if match else None


def _find_requirement(requirements: Sequence[str], missing: str | None) -> str | None:
    if missing is None:
        return None
    try:
        wanted = canonicalize_name(Requirement(missing).name)
    except InvalidRequirement:
        return None
    for line in requirements:
        if canonicalize_name(Requirement(line).name) == wanted:
            return line
    return None


def _pip_failure(result: subprocess.CompletedProcess[str], target: Target, what: str | None) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    detail = (errors or lines or ["pip gave no reason"])[-1].removeprefix("ERROR: ")
    subject = f"{what}" if what else "the requirements"
    return f"cannot fetch {subject} for Python {target.python} on {target.platforms[0]}: {detail}"


@dataclasses.dataclass(frozen=True)
class SourceRequirements:
    """What a source distribution needs: to build it, and at run time."""

    build: list[str]
    runtime: list[str]


def _source_requirements(directory: Path, requirement: str) -> SourceRequirements:
    name = canonicalize_name(Requirement(requirement).name)
    for path in sorted(directory.glob("*.tar.gz")):
        if canonicalize_name(path.name.rsplit("-", 1)[0]) == name:
            return read_sdist_requirements(path)
    return SourceRequirements(build=[], runtime=[])


def read_sdist_requirements(path: Path) -> SourceRequirements:
    """Read [build-system] requires and Requires-Dist from an sdist, without running it."""
    build = ["setuptools>=40.8.0"]  # PEP 517's default for projects without pyproject.toml
    runtime: list[str] = []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if len(parts) != 2 or not member.isfile():
                continue
            data = archive.extractfile(member)
            if data is None:
                continue
            if parts[1] == "pyproject.toml":
                table = tomllib.loads(data.read().decode()).get("build-system", {})
                build = list(table.get("requires", build))
            elif parts[1] == "PKG-INFO":
                metadata = email.parser.Parser().parsestr(data.read().decode())
                runtime = [
                    value
                    for value in metadata.get_all("Requires-Dist") or []
                    if "extra ==" not in value
                ]
    return SourceRequirements(build=build, runtime=runtime)
