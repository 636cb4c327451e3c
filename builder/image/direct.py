"""Direct references, built into wheels on the host: git repositories and archive URLs.

A pin with a URL (``name @ git+https://host/repo.git@<ref>`` or ``name @ https://host/x.whl``)
has no file on an index. It is made into a wheel here, before the build, so that the image
still installs offline and hash-checked: a repository is cloned with git at its ref (the
commit it names is recorded), and ``pip wheel --no-deps`` builds it; an archive is fetched
(checked against the lock's hashes) and built the same way. The wheel joins the wheelhouse
and is pinned by its sha256; :data:`SOURCES_FILE` beside it records where each came from,
credentials stripped, for the image's SBOM.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from builder.errors import ResolveError
from builder.image.indexes import expand
from builder.image.locks.sources import is_vcs, strip_userinfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from packaging.tags import Tag

    from builder.image import locks

#: The wheelhouse's record of its direct references, read by the image's sbom.py.
SOURCES_FILE = "kitbuild-sources.json"

Runner = Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]


def run_git(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the host's git with ``args``; the default git :data:`Runner`."""
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, env=env, check=False, timeout=900
        )
    except FileNotFoundError:
        raise ResolveError(
            "git is not installed, and a requirement names a git repository: install git"
        ) from None


@dataclasses.dataclass(frozen=True)
class Built:
    """A direct reference made into a wheel in the wheelhouse, and where it came from."""

    wheel: Path
    name: str
    version: str
    #: For the SBOM: url, and for git: repository, commit and the ref asked for.
    record: Mapping[str, str]

    def line(self) -> str:
        """The image's install line: by name and version, pinned to the wheel's sha256."""
        digest = hashlib.sha256(self.wheel.read_bytes()).hexdigest()
        return f"{self.name}=={self.version} --hash=sha256:{digest}"


def build(
    pin: locks.Pin,
    tags: frozenset[Tag],
    directory: Path,
    *,
    pip: Runner,
    git: Runner = run_git,
    env: Mapping[str, str],
) -> Built:
    """Make the pin's wheel in ``directory``: a git checkout or an archive, built on the host.

    ``tags`` are the wheel tags the image's Python takes; ``env`` is pip's environment (the
    project's indexes included: a build backend comes from there).
    """
    assert pin.url is not None
    shown = f"{pin.name} @ {strip_userinfo(pin.url)}"
    with tempfile.TemporaryDirectory(prefix="kitbuild-direct-") as scratch:
        work = Path(scratch)
        if is_vcs(pin.url):
            source, record = _checkout(pin.url, shown, work / "source", git, env)
            args = [str(source)]
        else:
            url = expand(pin.url, env, shown)
            listing = work / "requirement.txt"  # in a private directory, gone after the build
            listing.write_text(f"{pin.name} @ {url}" + "".join(f" --hash={h}" for h in pin.hashes))
            args = ["--require-hashes"] if pin.hashes else []
            args += ["-r", str(listing)]
            record = {"url": strip_userinfo(pin.url)}
        out = work / "wheels"
        command = ["wheel", "--no-deps", "--progress-bar=off", "--wheel-dir", str(out), *args]
        result = pip(command, dict(env))
        if result.returncode != 0:
            raise ResolveError(f"cannot build {shown} into a wheel: {_last_line(result)}")
        wheel = _checked_wheel(pin, shown, out, tags)
        destination = directory / wheel.name
        shutil.move(wheel, destination)
    name, version = parse_wheel_filename(destination.name)[:2]
    record = {"name": str(name), "version": str(version), **record}
    return Built(destination, str(name), str(version), record)


def _checked_wheel(pin: locks.Pin, shown: str, out: Path, tags: frozenset[Tag]) -> Path:
    """The one wheel pip built, if it is the package and version wanted, for the image."""
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise ResolveError(f"cannot build {shown} into a wheel: pip made {len(wheels)} wheels")
    try:
        name, version, _, wheel_tags = parse_wheel_filename(wheels[0].name)
    except (InvalidWheelFilename, InvalidVersion) as error:
        raise ResolveError(f"cannot build {shown}: {error}") from None
    if name != canonicalize_name(pin.name):
        raise ResolveError(f"{shown} is the package {name}, not {pin.name}: fix the name")
    if pin.version and version != Version(pin.version):
        raise ResolveError(
            f"{shown} builds version {version}, but {pin.version} is locked: re-lock the project"
        )
    if wheel_tags.isdisjoint(tags):
        raise ResolveError(
            f"{shown} builds {wheels[0].name} on this machine, which the image's Python cannot "
            "install: publish wheels for the image's platform, or build it from pure Python"
        )
    return wheels[0]


def _checkout(
    url: str, shown: str, source: Path, git: Runner, env: Mapping[str, str]
) -> tuple[Path, dict[str, str]]:
    """Clone the repository at its ref; the source directory and the commit it is at."""
    repository, ref, subdirectory = split_git(url)
    plain, auth = _credentials(expand(repository, env, shown))
    git_env = {**env, "GIT_TERMINAL_PROMPT": "0", **auth}
    git_env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    where = strip_userinfo(repository)
    cloned = git(["clone", "--quiet", "--no-checkout", plain, str(source)], git_env)
    if cloned.returncode != 0:
        raise ResolveError(
            f"cannot fetch {shown}: git cannot clone {where} ({_last_line(cloned)}); check the "
            "URL and that this machine can reach it (credentials: ~/.netrc, or ${VARIABLES} "
            "in the URL)"
        )
    commit = _commit(source, ref, git, git_env)
    if commit is None:
        raise ResolveError(
            f"cannot fetch {shown}: {where} has no branch, tag or commit {ref!r}; fix the "
            "ref, or re-lock the project"
        )
    steps = [["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit]]
    if (source / ".gitmodules").exists():
        steps.append(["submodule", "update", "--init", "--recursive", "--quiet"])
    for step in steps:
        done = git(["-C", str(source), *step], git_env)
        if done.returncode != 0:
            raise ResolveError(f"cannot check out {shown} at {commit}: {_last_line(done)}")
    record = {
        "url": strip_userinfo(f"git+{repository}@{commit}"),
        "vcs": "git",
        "repository": where,
        "commit": commit,
        "requested": ref or "",
    }
    return (source / subdirectory if subdirectory else source), record


def split_git(url: str) -> tuple[str, str | None, str | None]:
    """``git+URL@REF#subdirectory=S`` as (URL, REF, S); the ref is the path's last ``@``."""
    parts = urlsplit(url.removeprefix("git+"))
    path, _, ref = parts.path.rpartition("@") if "@" in parts.path else (parts.path, "", "")
    fragment = dict(p.split("=", 1) for p in parts.fragment.split("&") if "=" in p)
    repository = urlunsplit(parts._replace(path=path, fragment=""))
    return repository, ref or None, fragment.get("subdirectory")


def _commit(source: Path, ref: str | None, git: Runner, env: dict[str, str]) -> str | None:
    """The commit a ref names: a branch or tag of the clone, or a commit it has (or fetches)."""
    candidates = [ref, f"origin/{ref}"] if ref else ["HEAD"]
    for attempt in range(2):
        for candidate in candidates:
            found = git(
                ["-C", str(source), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                env,
            )
            if found.returncode == 0:
                return found.stdout.strip()
        # A commit no branch holds any more: a server may still give it when asked by id.
        if attempt or not ref or not re.fullmatch(r"[0-9a-f]{7,64}", ref):
            return None
        git(["-C", str(source), "fetch", "--quiet", "origin", ref], env)
    return None


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """An http(s) URL without its userinfo, and git's environment that sends it as a header.

    Through git's environment (``GIT_CONFIG_*``) rather than its command line, where any
    process could read it.
    """
    parts = urlsplit(url)
    if not parts.scheme.startswith("http") or "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    auth = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}",
    }
    return urlunsplit(parts._replace(netloc=host)), auth


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    """The tool's last words (its error), credentials stripped."""
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()]
    errors = [line for line in lines if line.startswith(("ERROR:", "fatal:", "error:"))]
    last = (errors or [line for line in lines if line] or ["no reason given"])[-1]
    return strip_userinfo(re.sub(r"^(ERROR|fatal|error):\s*", "", last))


def write_sources(directory: Path, records: list[Mapping[str, str]]) -> None:
    """Record where the wheelhouse's direct references came from (none: no file)."""
    if records:
        ordered = sorted(records, key=lambda record: record["name"])
        (directory / SOURCES_FILE).write_text(json.dumps(ordered, indent=1, sort_keys=True) + "\n")


def read_sources(directory: Path) -> list[dict[str, str]]:
    """The wheelhouse's record of its direct references (empty without one)."""
    path = directory / SOURCES_FILE
    if not path.is_file():
        return []
    records: list[dict[str, str]] = json.loads(path.read_text())
    return records
