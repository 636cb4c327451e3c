"""Fetch a project's dependencies on the host, for the image's Python, into a wheelhouse.

The image then installs with ``pip --no-index``: the build needs no network, which is
what air-gapped sites and corporate proxies need. Packages with no wheel for the
image's platform are fetched as source, with their build requirements, and compiled in
the image's build stage.
"""

from __future__ import annotations

import dataclasses
import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from builder.errors import KitError, ResolveError
from builder.image import direct, locks
from builder.image import indexes as indexes_module
from builder.image.locks.sources import strip_userinfo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from builder.engine import DockerGateway


@dataclasses.dataclass(frozen=True)
class Target:
    """The Python an image runs: what pip needs to pick the right wheels."""

    python: str  # "3.11"
    abi: str  # "cp311"
    implementation: str  # "cp"
    platforms: tuple[str, ...]  # newest first, e.g. manylinux_2_36_x86_64 ... linux_x86_64
    #: The full version ("3.11.2"): markers such as python_full_version < "3.11.3" need it.
    python_full: str

    def pip_flags(self) -> list[str]:
        """Pip download flags that select wheels for this target instead of the host."""
        flags = [
            f"--python-version={self.python}",
            f"--implementation={self.implementation}",
            f"--abi={self.abi}",
        ]
        # pip does not expand manylinux_2_X to older tags by itself: list every one.
        return flags + [f"--platform={platform}" for platform in self.platforms]

    @property
    def machine(self) -> str:
        """The CPU architecture, e.g. x86_64 (the last platform tag is plain linux_<machine>)."""
        return self.platforms[-1].removeprefix("linux_")

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker variables of the image's CPython on Linux (not the host's)."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python_full,
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.python_full,
            "python_version": self.python,
            "sys_platform": "linux",
        }

    def lock_target(self) -> locks.Target:
        """What lock readers evaluate markers and wheel tags against."""
        version = tuple(int(part) for part in self.python.split("."))
        interpreter = f"{self.implementation}{self.python.replace('.', '')}"
        found = [
            *tags.cpython_tags(version, [self.abi, "abi3", "none"], self.platforms),
            *tags.compatible_tags(version, interpreter, self.platforms),
        ]
        return locks.Target(environment=self.marker_environment(), tags=frozenset(found))

    def uv_platforms(self) -> list[str]:
        """Uv's --python-platform names for this target, newest glibc first."""
        names = [
            f"{self.machine}-{platform.removesuffix('_' + self.machine)}"
            for platform in self.platforms
            if platform.startswith("manylinux_")
        ]
        return [*names, f"{self.machine}-unknown-linux-gnu"]


_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}


def target_for(python_full: str, glibc: str, machine: str) -> Target:
    """A target from its full Python version and glibc version (no Docker needed).

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
    python = ".".join(python_full.split(".")[:2])
    digits = python.replace(".", "")
    return Target(
        python=python,
        abi=f"cp{digits}",
        implementation="cp",
        platforms=tuple(platforms),
        python_full=python_full,
    )


# Runs inside the build image, offline: pip's own tag logic says what wheels it accepts.
_TARGET_PROBE = (
    "import json, sys, platform; from pip._vendor.packaging import tags;"
    "t = list(tags.sys_tags());"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2],"
    " 'full': platform.python_version(),"
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
        python_full=data["full"],
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
    """What was fetched: the directory, the names built from source, the install lines."""

    directory: Path
    from_source: tuple[str, ...]
    #: ``name==version --hash=...`` for every pin: the image installs with --require-hashes.
    requirements: tuple[str, ...] = ()

    def version_of(self, name: str) -> str | None:
        """The version of ``name`` in the wheelhouse, from its file name."""
        found = _file_of(self.directory, canonicalize_name(name), None)
        return _name_version(found.name)[1] if found else None


# --------------------------------------------------------------------------- resolving

UvRunner = Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]


def run_uv(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run uv (the resolver kitbuild depends on) with ``args``; the default :data:`UvRunner`."""
    from uv import find_uv_bin  # noqa: PLC0415 (only unlocked projects need it)

    command = [find_uv_bin(), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


class Resolve(Protocol):
    """The resolver a build is given: :func:`resolve`, the cache around it, or a fake."""

    def __call__(
        self,
        requirements: Sequence[str],
        target: Target,
        *,
        constraints: Sequence[locks.Pin] = ...,
        indexes: Sequence[locks.PackageIndex] = ...,
    ) -> list[locks.Pin]:
        """Pins for ``requirements`` on ``target``, kept at ``constraints``' versions.

        ``indexes`` are the project's own: searched, and attached to the pins to fetch them.
        """
        ...


def resolve(
    requirements: Sequence[str],
    target: Target,
    *,
    constraints: Sequence[locks.Pin] = (),
    indexes: Sequence[locks.PackageIndex] = (),
    uv: UvRunner = run_uv,
    pip: PipRunner = run_pip,
) -> list[locks.Pin]:
    """Pins for ``requirements``, resolved for the target's Python and platform (not the host's).

    uv evaluates every marker for the target's full Python version, so a dependency such as
    ``async-timeout; python_full_version < "3.11.3"`` is kept for 3.11.2 even on a 3.11.7
    host. ``constraints`` (a lock's pins) keep shared dependencies at their locked versions.
    A ``name @ url`` requirement comes back as a pin with its URL (uv names the commit of a
    git ref); its version is the wheel's, once built.
    """
    env = indexes_module.tool_env(
        {**_uv_index_env(pip), **os.environ, **_SOURCE_ENV}, indexes, indexes_module.UV
    )
    with tempfile.TemporaryDirectory(prefix="kitbuild-resolve-") as scratch:
        wanted = Path(scratch) / "requirements.in"
        wanted.write_text("\n".join(requirements) + "\n")
        pinned = Path(scratch) / "constraints.txt"
        pinned.write_text(
            "".join(f"{pin.name}=={pin.version}\n" for pin in constraints if pin.version)
        )
        result: subprocess.CompletedProcess[str] | None = None
        for platform in target.uv_platforms():
            result = uv(
                [
                    "pip",
                    "compile",
                    "--quiet",
                    "--no-header",
                    "--no-annotate",
                    "--python-version",
                    target.python_full,
                    "--python-platform",
                    platform,
                    "--constraint",
                    str(pinned),
                    str(wanted),
                ],
                env,
            )
            # An older uv may not know the newest manylinux: try the next older name.
            if result.returncode == 0 or "--python-platform" not in result.stderr:
                break
    assert result is not None
    if result.returncode != 0:
        # uv draws a tree before its words; keep the words (the reason follows the first line).
        lines = [re.sub(r"^[^\w(]+", "", line).strip() for line in result.stderr.splitlines()]
        lines = [line for line in lines if line and not line.startswith("hint")]
        detail = strip_userinfo(" ".join(lines[1:] or lines).removeprefix("error: "))
        raise ResolveError(
            f"cannot resolve the requirements for Python {target.python_full} on "
            f"{target.platforms[0]}: {detail}"
        )
    return _resolved_pins(result.stdout, requirements, tuple(indexes))


def _resolved_pins(
    output: str, requirements: Sequence[str], indexes: tuple[locks.PackageIndex, ...]
) -> list[locks.Pin]:
    """Uv's ``name==version`` and ``name @ url`` lines as pins (fetched from ``indexes``).

    A URL keeps the credentials (``${VARIABLE}``) as the project wrote them, never uv's.
    """
    written = {}
    for line in requirements:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.url:
            written[canonicalize_name(requirement.name)] = requirement.url
    pins = []
    for raw in output.splitlines():
        line = re.split(r"(?:^|\s)#", raw, maxsplit=1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if requirement.url:
            url = _with_userinfo_of(requirement.url, written.get(name))
            pins.append(locks.Pin(name, "", url=url, indexes=indexes))
            continue
        version = next(iter(requirement.specifier)).version
        pins.append(locks.Pin(name, version, indexes=indexes))
    return pins


def _with_userinfo_of(resolved: str, written: str | None) -> str:
    """Uv's resolved URL, its userinfo replaced with the one the project wrote (if any)."""
    plain = strip_userinfo(resolved)
    found = re.search(r"://([^/@\s]*@)", written or "")
    return plain.replace("://", f"://{found.group(1)}", 1) if found else plain


def _uv_index_env(pip: PipRunner) -> dict[str, str]:
    """The user's pip index settings (pip.conf or PIP_*), as uv's variables.

    uv does not read pip's configuration; without this a mirror the user configured for
    pip would be bypassed. Variables the user set for uv itself take precedence.
    """
    names = {
        "index-url": "UV_INDEX_URL",
        "extra-index-url": "UV_EXTRA_INDEX_URL",
        "find-links": "UV_FIND_LINKS",
        "cert": "SSL_CERT_FILE",
    }
    return {names[k]: v for k, v in _pip_config(pip).items() if k in names}


def _pip_config(pip: PipRunner) -> dict[str, str]:
    """The options of the user's pip configuration (pip.conf, PIP_*), by option name."""
    result = pip(["config", "list"], dict(os.environ))
    found: dict[str, str] = {}
    for line in result.stdout.splitlines() if result.returncode == 0 else []:
        key, _, value = line.partition("=")
        if value:
            found[key.rsplit(".", 1)[-1]] = value.strip().strip("'\"")
    return found


# --------------------------------------------------------------------------- fetching


class Fetch(Protocol):
    """The fetch a build is given: :func:`fetch`, the cache around it, or a fake."""

    def __call__(
        self,
        pins: Sequence[locks.Pin],
        target: Target,
        directory: Path,
        *,
        say: Callable[[str], None] = ...,
    ) -> Wheelhouse:
        """Exactly ``pins`` for ``target``, downloaded into ``directory``."""
        ...


def fetch(
    pins: Sequence[locks.Pin],
    target: Target,
    directory: Path,
    *,
    pip: PipRunner = run_pip,
    git: direct.Runner = direct.run_git,
    say: Callable[[str], None] = print,
) -> Wheelhouse:
    """Download exactly ``pins`` (no resolution: they are the whole set) for ``target``.

    Pins with hashes are downloaded in pip's hash-checking mode. Every pin leaves with
    hashes: its own, or the sha256 of the file fetched, so the image can install with
    ``--require-hashes``. Packages with no wheel for the target are fetched as source,
    with their build requirements, and compiled in the build stage. A pin from the
    project's own index is fetched from there; a direct reference (git, an archive URL)
    is built into a wheel first (:mod:`builder.image.direct`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    configured: dict[str, str] | None = None
    built: dict[locks.Pin, direct.Built] = {}
    for pin in [p for p in pins if p.url]:  # first: an unreachable repository fails early
        env = dict(os.environ)
        if pin.indexes:
            configured = _pip_configured(pip) if configured is None else configured
            env = indexes_module.tool_env(env, pin.indexes, indexes_module.PIP, configured)
        built[pin] = direct.build(
            pin, target.lock_target().tags, directory, pip=pip, git=git, env={**env, **_SOURCE_ENV}
        )
    source: list[str] = []
    for indexes in dict.fromkeys(p.indexes for p in pins if not p.url):
        env = dict(os.environ)
        if indexes:
            configured = _pip_configured(pip) if configured is None else configured
            env = indexes_module.tool_env(env, indexes, indexes_module.PIP, configured)
        group = [p for p in pins if not p.url and p.indexes == indexes]
        for part in ([p for p in group if p.hashes], [p for p in group if not p.hashes]):
            source += _download(part, target, directory, pip, say, env=env)
    lines = []
    for pin in pins:
        if pin in built:
            lines.append(built[pin].line())
            continue
        found = _file_of(directory, pin.name, pin.version)
        if found is None:
            raise ResolveError(f"pip fetched no file of {pin.name}=={pin.version}")
        hashes = pin.hashes or (f"sha256:{hashlib.sha256(found.read_bytes()).hexdigest()}",)
        lines.append(dataclasses.replace(pin, hashes=hashes).line())
    direct.write_sources(directory, [b.record for b in built.values()])
    return Wheelhouse(directory, tuple(source), tuple(lines))


def _pip_configured(pip: PipRunner) -> dict[str, str]:
    """pip.conf's extra indexes and --find-links, by pip's variables: a project's add to them."""
    names = {"extra-index-url": "PIP_EXTRA_INDEX_URL", "find-links": "PIP_FIND_LINKS"}
    return {names[k]: v for k, v in _pip_config(pip).items() if k in names}


def _download(
    pins: Sequence[locks.Pin],
    target: Target,
    directory: Path,
    pip: PipRunner,
    say: Callable[[str], None],
    *,
    env: dict[str, str],
) -> list[str]:
    if not pins:
        return []
    base = ["download", "--dest", str(directory), "--progress-bar=off", *target.pip_flags()]
    binary = [pin.line() for pin in pins]
    source: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kitbuild-pins-") as scratch:
        listing = Path(scratch) / "pins.txt"

        def download(lines: Sequence[str], *flags: str) -> subprocess.CompletedProcess[str]:
            listing.write_text("\n".join(lines) + "\n")
            extra = _SOURCE_ENV if "--no-binary=:all:" in flags else {}
            return pip([*base, *flags, "-r", str(listing)], {**env, **extra})

        while binary:  # what is left once every source-only package has been set aside
            result = download(binary, "--no-deps", "--only-binary=:all:")
            if result.returncode == 0:
                break
            line = _find_requirement(binary, _missing_name(result))
            if line is None:
                raise ResolveError(_pip_failure(result, target, _missing_name(result)))
            name = line.split("==", 1)[0]
            say(f"kitbuild: no wheel of {name} for Python {target.python}; fetching its source")
            fetched = download([line], "--no-deps", "--no-binary=:all:")
            if fetched.returncode != 0:
                raise ResolveError(_pip_failure(fetched, target, name))
            binary.remove(line)
            source.append(name)
            # Its build backend, resolved with its own dependencies: the build stage installs
            # them from the wheelhouse to compile it (pip does not hash-check build tools).
            build = _source_requirements(directory, name).build
            if build:
                built = download(build, "--only-binary=:all:")
                if built.returncode != 0:
                    raise ResolveError(_pip_failure(built, target, "build requirements of " + name))
    return source


@dataclasses.dataclass(frozen=True)
class Unpinned:
    """A dependency a pinned wheel needs on the target that the pins leave out."""

    name: str  # canonical: "async-timeout"
    needed_by: str  # "redis 5.0.1"
    requirement: str  # as the wheel's metadata says it, marker included


def unpinned_dependencies(
    pins: Sequence[locks.Pin], directory: Path, target: Target
) -> list[Unpinned]:
    """What the fetched wheels need on the image's Python that no pin provides.

    A locked set is installed as it is, with ``--require-hashes``: a dependency it lacks
    stops the offline install in the build, with pip's long message. A set hashed for the
    host's Python (3.11.7) can lack one the image's (3.11.2) needs, as ``async-timeout;
    python_full_version < "3.11.3"`` for redis. Only wheels are read (an sdist's metadata
    may be computed when it builds); extras are not followed (their packages are pins too).
    """
    names = {pin.name for pin in pins}
    environment = {**target.marker_environment(), "extra": ""}
    found: list[Unpinned] = []
    for pin in pins:
        path = _file_of(directory, pin.name, pin.version or None)
        if path is None or path.suffix != ".whl":
            continue
        for line in _wheel_requirements(path):
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            name = canonicalize_name(requirement.name)
            if name not in names:
                found.append(Unpinned(name, f"{pin.name} {pin.version}", line))
    return found


def _wheel_requirements(path: Path) -> list[str]:
    """Requires-Dist of a wheel, from its .dist-info/METADATA."""
    if not zipfile.is_zipfile(path):
        return []  # not a wheel after all: the install's hash check names it
    with zipfile.ZipFile(path) as archive:
        metadata = next(
            (
                name
                for name in archive.namelist()
                if name.count("/") == 1 and name.endswith(".dist-info/METADATA")
            ),
            None,
        )
        if metadata is None:
            return []
        text = archive.read(metadata).decode("utf-8", errors="replace")
    return list(email.parser.Parser().parsestr(text).get_all("Requires-Dist") or [])


def _name_version(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        name, version, _, _ = parse_wheel_filename(filename)
        return name, str(version)
    name, version = parse_sdist_filename(filename)
    return name, str(version)


def _file_of(directory: Path, name: str, version: str | None) -> Path | None:
    for path in sorted(directory.iterdir()):
        try:
            found_name, found_version = _name_version(path.name)
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
        if found_name == name and (version is None or Version(found_version) == Version(version)):
            return path
    return None


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
        if canonicalize_name(Requirement(line.split(" --", 1)[0]).name) == wanted:
            return line
    return None


def _pip_failure(result: subprocess.CompletedProcess[str], target: Target, what: str | None) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    detail = strip_userinfo((errors or lines or ["pip gave no reason"])[-1].removeprefix("ERROR: "))
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
