"""The corpus suite's pure parts: the data file, the archives, the results table.

Nothing here needs Docker; tests/corpus/test_corpus.py builds and runs the projects, and
tests/corpus/test_corpus_data.py checks this module on its own.
"""

from __future__ import annotations

import dataclasses
import os
import string
import subprocess
import tarfile
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DATA_FILE = HERE / "projects.toml"
#: Where the archives are looked for when KIT_CORPUS_DIR is not set: shared/corpus beside
#: the checkout or one of its parents (CI's clone has shared/ beside it).
CORPUS_ENV = "KIT_CORPUS_DIR"
_KEYS = {"declares", "flags", "build_env", "env", "headers", "pages", "known", "known_build"}


@dataclasses.dataclass(frozen=True)
class Page:
    """A path to request and the status CORPUS.md lists for it."""

    path: str
    status: int
    location: str | None = None  # the start of a redirect's Location header


@dataclasses.dataclass(frozen=True)
class CorpusProject:
    """One archive's build flags, environments and pages, as projects.toml gives them."""

    name: str
    declares: str
    flags: tuple[str, ...]
    build_env: dict[str, str]
    env: dict[str, str]
    headers: dict[str, str]
    pages: tuple[Page, ...]
    known: str | None
    known_build: str | None

    def build_arguments(self, values: dict[str, str]) -> list[str]:
        """The `kitbuild build` arguments: the flags, then one --build-env per variable."""
        return build_arguments(self.flags, self.build_env, values)

    def environment(self, values: dict[str, str]) -> dict[str, str]:
        """The container's environment from the data file, placeholders filled in."""
        return {name: fill(text, values) for name, text in self.env.items()}


def build_arguments(
    flags: tuple[str, ...], build_env: dict[str, str], values: dict[str, str]
) -> list[str]:
    """`kitbuild build` arguments: the flags, then one --build-env per variable, filled in."""
    arguments = [fill(flag, values) for flag in flags]
    for name, text in build_env.items():
        arguments += ["--build-env", f"{name}={fill(text, values)}"]
    return arguments


def matches(page: Page, status: int, location: str) -> bool:
    """The status is the listed one, and a redirect goes where the list says.

    ``location`` may be absolute or relative; its path and query are compared.
    """
    if status != page.status:
        return False
    if page.location is None:
        return True
    parts = urllib.parse.urlsplit(location)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return urllib.parse.unquote(target) == page.location


def fill(text: str, values: dict[str, str]) -> str:
    """Replace $name placeholders; an unknown one is an error in the data file."""
    return string.Template(text).substitute(values)


def read_tables(path: Path, keys: set[str]) -> list[tuple[str, dict[str, Any]]]:
    """A data file's tables by name; a key not in ``keys`` is an error, not ignored."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for name, table in data.items():
        unknown = set(table) - keys
        if unknown:
            raise ValueError(f"{path.name}: [{name}] has unknown keys {sorted(unknown)}")
    return list(data.items())


def load_projects(path: Path = DATA_FILE) -> list[CorpusProject]:
    """Read the data file; a key it does not know is an error, not silently ignored."""
    projects = []
    for name, table in read_tables(path, _KEYS):
        projects.append(
            CorpusProject(
                name=name,
                declares=str(table["declares"]),
                flags=tuple(table.get("flags", ())),
                build_env=dict(table.get("build_env", {})),
                env=dict(table.get("env", {})),
                headers=dict(table.get("headers", {})),
                pages=tuple(Page(**page) for page in table["pages"]),
                known=table.get("known"),
                known_build=table.get("known_build"),
            )
        )
    return projects


def find_corpus(start: Path = HERE, environ: dict[str, str] | None = None) -> Path | None:
    """The corpus folder: $KIT_CORPUS_DIR, else the nearest shared/corpus above ``start``."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get(CORPUS_ENV):
        return Path(environ[CORPUS_ENV])
    for directory in start.resolve().parents:
        candidate = directory / "shared" / "corpus"
        if (candidate / "CORPUS.md").is_file():
            return candidate
    return None


def extract(archive: Path, destination: Path) -> Path:
    """Unpack a `git archive` tarball; return its one top folder (the project)."""
    with tarfile.open(archive) as tar:
        tar.extractall(destination, filter="data")
    folders = [child for child in destination.iterdir() if child.is_dir()]
    if len(folders) != 1:
        raise ValueError(f"{archive.name}: expected one top folder, found {len(folders)}")
    return folders[0]


def rsa_private_key() -> str:
    """A fresh 2048-bit RSA private key in PEM, made by the host's openssl."""
    result = subprocess.run(
        ["openssl", "genrsa", "2048"], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout


@dataclasses.dataclass
class Result:
    """What the suite measured for one project."""

    name: str
    declares: str
    build_seconds: float | None = None
    size_bytes: int | None = None
    build_error: str | None = None
    pages_ok: int = 0
    pages_total: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)

    def verdict(self) -> str:
        """One cell: what worked, or the first thing that did not."""
        if self.build_error is not None:
            return f"build fails: {self.build_error}"
        if self.build_seconds is None:
            return "not run"
        if not self.pages_total:
            return "builds; pages not checked"
        if self.failures:
            return f"{self.pages_ok}/{self.pages_total} pages as listed; " + "; ".join(
                self.failures
            )
        return f"works: {self.pages_ok}/{self.pages_total} pages as listed"


def table(results: list[Result]) -> str:
    """The corpus table of docs/building.md, in Markdown."""
    lines = [
        "| project | how it declares dependencies | build time | image size | result |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        seconds = "—" if result.build_seconds is None else f"{result.build_seconds:.0f} s"
        size = "—" if result.size_bytes is None else f"{result.size_bytes / 1e6:.0f} MB"
        lines.append(
            f"| {result.name} | {result.declares} | {seconds} | {size} | {result.verdict()} |"
        )
    return "\n".join(lines)


#: The user property a corpus test's report carries its project's result in.
RESULT_PROPERTY = "kitbuild-corpus-result"


def as_json(results: list[Result]) -> list[dict[str, Any]]:
    """The results as plain data, for KIT_CORPUS_RESULTS."""
    return [dataclasses.asdict(result) for result in results]
