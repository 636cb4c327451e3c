"""The indexes a project names, and file names percent-encoded in a lock's URLs.

Index lines, ``[[tool.uv.index]]``, Poetry's sources and Pipfile's are read, completed with
credentials from the environment, and handed to uv and pip by their variables; a real
check downloads from a PEP 503 index served on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from builder.errors import ResolveError
from builder.image import indexes, wheelhouse
from builder.image.dependencies import read_declared
from builder.image.locks import PackageIndex, Pin, pipenv, poetry, pylock, uv
from builder.image.locks.sources import filename_of, poetry_sources, strip_userinfo
from tests.vcs_server import DEAD, PACKAGE, Served, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

BOOKWORM = wheelhouse.target_for("3.11.2", "2.36", "x86_64")
HASH = "sha256:" + "0" * 64


def completed(args: list[str], stdout: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(args, 0, stdout, "")


# --------------------------------------------------------------------------- reading


def test_requirements_index_lines_are_kept_and_named_without_credentials(tmp_path: Path) -> None:
    """--extra-index-url and -f are used; -i is named, left to the user's configuration.

    The user's pip and uv configuration chooses the primary index (a mirror, a proxy);
    the notes hide the password.
    """
    (tmp_path / "requirements.txt").write_text(
        "-i https://me:${PIP_INDEX_PASSWORD}@pypi.corp.invalid/simple\n"
        "--extra-index-url=https://extra.invalid/simple\n"
        "-f /srv/wheels\n"
        "Django>=5.2,<5.3\n"
    )
    found = read_declared(tmp_path, tmp_path)
    selection = found.select(BOOKWORM.lock_target())

    assert (
        PackageIndex("https://extra.invalid/simple", "extra"),
        PackageIndex("/srv/wheels", "links"),
    ) == selection.indexes
    notes = " ".join(found.notes)
    assert "names the index https://pypi.corp.invalid/simple; packages come from" in notes
    assert "PIP_INDEX_PASSWORD" not in notes


def test_hashed_requirements_pins_leave_the_primary_index_to_the_user(tmp_path: Path) -> None:
    """A lock-like requirements file with --index-url: the pins carry no index of their own."""
    (tmp_path / "requirements.txt").write_text(
        f"--index-url https://corp.invalid/simple\ndjango==5.2.19 --hash={HASH}\n"
    )
    pins = read_declared(tmp_path, tmp_path).select(BOOKWORM.lock_target()).pins

    assert () == pins[0].indexes


def test_uv_lock_package_from_a_declared_index_is_fetched_from_it() -> None:
    """A registry [[tool.uv.index]] declares is the pin's own index; the default's is not."""
    text = """
version = 1
requires-python = ">=3.11"
[[package]]
name = "app"
version = "1.0"
source = { virtual = "." }
dependencies = [{ name = "private" }, { name = "public" }]
[[package]]
name = "private"
version = "1.0"
source = { registry = "https://corp.invalid/simple/" }
wheels = [{ url = "https://corp.invalid/private-1.0-py3-none-any.whl", hash = "sha256:aa" }]
[[package]]
name = "public"
version = "2.0"
source = { registry = "https://index.invalid/simple" }
wheels = [{ url = "https://index.invalid/public-2.0-py3-none-any.whl", hash = "sha256:bb" }]
"""
    declared = (PackageIndex("https://corp.invalid/simple", "extra", "corp"),)
    pins = {
        pin.name: pin
        for pin in uv.parse_lock(text, BOOKWORM.lock_target(), (), "uv.lock", declared)
    }

    assert (PackageIndex("https://corp.invalid/simple", "index", "corp"),) == pins[
        "private"
    ].indexes
    assert () == pins["public"].indexes


def test_poetry_legacy_source_and_primary_sources() -> None:
    """poetry.lock's legacy source is the pin's index; a primary source replaces the default."""
    lock = """
[[package]]
name = "private"
version = "1.0"
python-versions = "*"
files = [{ file = "private-1.0-py3-none-any.whl", hash = "sha256:aa" }]
[package.source]
type = "legacy"
url = "https://corp.invalid/simple"
reference = "corp"
[metadata]
python-versions = "^3.11"
"""
    roots = poetry.table_dependencies({"private": "^1.0"}, "pyproject.toml")
    pins = poetry.parse_lock(lock, roots, BOOKWORM.lock_target(), "poetry.lock", "pyproject.toml")
    sources = poetry_sources(
        {
            "tool": {
                "poetry": {
                    "source": [
                        {"name": "corp", "url": "https://corp.invalid/simple"},
                        {
                            "name": "more",
                            "url": "https://more.invalid/simple",
                            "priority": "supplemental",
                        },
                    ]
                }
            }
        }
    )

    assert (PackageIndex("https://corp.invalid/simple", "index", "corp"),) == pins[0].indexes
    assert ["index", "extra"] == [source.kind for source in sources]


def test_pipfile_lock_package_from_another_source_is_fetched_from_it() -> None:
    """Pipenv's first source is the default; a package locked from the second is fetched there."""
    lock = json.dumps(
        {
            "_meta": {
                "requires": {},
                "sources": [
                    {"name": "main", "url": "https://index.invalid/simple", "verify_ssl": True},
                    {"name": "corp", "url": "https://${CORP}@corp.invalid/simple"},
                ],
            },
            "default": {
                "public": {"version": "==2.0", "hashes": ["sha256:bb"], "index": "main"},
                "private": {"version": "==1.0", "hashes": ["sha256:aa"], "index": "corp"},
            },
        }
    )
    pins = {pin.name: pin for pin in pipenv.parse_lock(lock, BOOKWORM.lock_target(), [], "lock")}

    assert (PackageIndex("https://${CORP}@corp.invalid/simple", "index", "corp"),) == pins[
        "private"
    ].indexes
    assert () == pins["public"].indexes


# --------------------------------------------------------------------------- credentials


def test_credentials_come_from_variables_and_names() -> None:
    """${VAR} is expanded; a named index takes uv's or Poetry's variables for its name."""
    env = {
        "PIP_INDEX_PASSWORD": "p@ss",
        "UV_INDEX_CORP_NET_USERNAME": "me",
        "UV_INDEX_CORP_NET_PASSWORD": "pw/1",
    }

    assert "https://me:p@ss@corp.invalid/simple" == indexes.usable_url(
        PackageIndex("https://me:${PIP_INDEX_PASSWORD}@corp.invalid/simple"), env
    )
    assert "https://me:pw%2F1@corp.invalid/simple" == indexes.usable_url(
        PackageIndex("https://corp.invalid/simple", name="corp-net"), env
    )


def test_an_unset_variable_is_one_line_without_the_url_credentials() -> None:
    """A ${VARIABLE} the environment lacks is named, with what to do; no userinfo shown."""
    index = PackageIndex("https://me:${PIP_INDEX_PASSWORD}@corp.invalid/simple")

    with pytest.raises(ResolveError) as error:
        indexes.usable_url(index, {})

    assert str(error.value).startswith(
        "the index https://corp.invalid/simple uses ${PIP_INDEX_PASSWORD}, which is not set: "
        "export it"
    )
    assert "me:" not in str(error.value)


def test_strip_userinfo_removes_user_and_password_of_every_url() -> None:
    """Messages and records never carry a URL's credentials."""
    assert "see https://host/x and ssh://host/y" == strip_userinfo(
        "see https://me:pw@host/x and ssh://git@host/y"
    )


# --------------------------------------------------------------------------- handing over


def test_the_resolver_gets_the_projects_indexes_by_uvs_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolver sees the index, the extra index and the links; its pins keep the indexes."""
    monkeypatch.setenv("CORP_TOKEN", "t0ken")
    monkeypatch.delenv("UV_EXTRA_INDEX_URL", raising=False)
    seen: list[tuple[list[str], dict[str, str]]] = []

    def fake_uv(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        seen.append((args, env))
        return completed(args, "private==1.0\n")

    named = (
        PackageIndex("https://${CORP_TOKEN}@corp.invalid/simple", "index"),
        PackageIndex("https://extra.invalid/simple", "extra"),
        PackageIndex("/srv/wheels", "links"),
    )
    pins = wheelhouse.resolve(
        ["private"], BOOKWORM, indexes=named, uv=fake_uv, pip=lambda a, _e: completed(a)
    )

    args, env = seen[0]
    assert "https://t0ken@corp.invalid/simple" == env["UV_INDEX_URL"]
    assert "https://extra.invalid/simple" == env["UV_EXTRA_INDEX_URL"]
    assert "/srv/wheels" == env["UV_FIND_LINKS"]
    assert "t0ken" not in " ".join(args)
    assert [Pin("private", "1.0", indexes=named)] == pins


def test_the_fetch_uses_a_pins_own_index_and_the_configured_one_for_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pins of the project's index download with PIP_INDEX_URL set; the rest as configured."""
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    downloads: dict[str, dict[str, str]] = {}

    def fake_pip(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        if args[0] == "download":
            name, version = Path(args[-1]).read_text().split()[0].split("==")
            downloads[name] = env
            (tmp_path / f"{name}-{version}-py3-none-any.whl").write_bytes(b"wheel")
        return completed(args, "global.extra-index-url='https://mirror-extra.invalid/simple'\n")

    corp = (PackageIndex("https://corp.invalid/simple", "index"),)
    pins = [Pin("private", "1.0", (HASH,), indexes=corp), Pin("public", "2.0", (HASH,))]

    wheelhouse.fetch(pins, BOOKWORM, tmp_path, pip=fake_pip, say=lambda _line: None)

    assert "https://corp.invalid/simple" == downloads["private"]["PIP_INDEX_URL"]
    assert "PIP_INDEX_URL" not in downloads["public"]


# --------------------------------------------------------------------------- a real index


@pytest.fixture(name="index")
def _index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Served, str]]:
    """A PEP 503 index on 127.0.0.1 holding tinypkg 0.3's wheel; its sha256."""
    root = tmp_path / "served"
    (root / "simple" / "tinypkg").mkdir(parents=True)
    spec = importlib.util.spec_from_file_location("tiny_backend", PACKAGE / "backend.py")
    assert spec is not None
    assert spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    monkeypatch.chdir(PACKAGE)
    name = backend.build_wheel(str(root))
    digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
    (root / "simple" / "tinypkg" / "index.html").write_text(
        f'<html><body><a href="../../{name}#sha256={digest}">{name}</a></body></html>'
    )
    yield from ((served, digest) for served in serve(root))


def test_the_configured_index_wins_over_a_requirements_files_own(
    tmp_path: Path, index: tuple[Served, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--index-url in the file names one nobody serves; the configured index is used."""
    served, digest = index
    monkeypatch.setenv("PIP_INDEX_URL", f"{served.url}/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    project = tmp_path / "site"
    project.mkdir()
    (project / "requirements.txt").write_text(
        f"--index-url {DEAD}/simple\ntinypkg==0.3 --hash=sha256:{digest}\n"
    )
    pins = read_declared(project, project).select(BOOKWORM.lock_target()).pins

    fetched = wheelhouse.fetch(pins, BOOKWORM, tmp_path / "wheels", say=lambda _line: None)

    assert (f"tinypkg==0.3 --hash=sha256:{digest}",) == fetched.requirements
    assert (fetched.directory / "tinypkg-0.3-py3-none-any.whl").is_file()


# --------------------------------------------------------------------------- percent-encoding

TORCH = "torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def test_a_percent_encoded_file_name_is_read_decoded() -> None:
    """%2B is +: the wheel's name parses, with its local version."""
    assert "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" == filename_of(
        f"https://download.invalid/whl/cpu/{TORCH}#sha256=00"
    )


def test_uv_lock_with_an_encoded_wheel_url_selects_it() -> None:
    """Without decoding, no file of torch matched the image's Python and the lock was refused."""
    text = f"""
version = 1
requires-python = ">=3.11"
[[package]]
name = "app"
version = "1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "torch" }}]
[[package]]
name = "torch"
version = "2.13.0+cpu"
source = {{ registry = "https://download.invalid/whl/cpu" }}
wheels = [{{ url = "https://download.invalid/whl/cpu/{TORCH}", hash = "sha256:00" }}]
"""
    pins = uv.parse_lock(text, BOOKWORM.lock_target(), (), "uv.lock")

    assert [Pin("torch", "2.13.0+cpu", ("sha256:00",))] == pins


def test_pylock_with_an_encoded_wheel_url_selects_it() -> None:
    """PEP 751's wheel URL with %2B: packaging's selection decodes it and takes the wheel."""
    text = f"""
lock-version = "1.0"
created-by = "tests"
requires-python = ">=3.11"
[[packages]]
name = "torch"
version = "2.13.0+cpu"
wheels = [{{ url = "https://download.invalid/whl/cpu/{TORCH}", hashes = {{ sha256 = "00" }} }}]
"""
    pins = pylock.parse_lock(text, BOOKWORM.lock_target(), (), "pylock.toml")

    assert [Pin("torch", "2.13.0+cpu", ("sha256:00",))] == pins


def test_poetry_lock_with_an_encoded_file_name_selects_it() -> None:
    """A poetry.lock file entry written encoded is decoded before its tags are read."""
    lock = f"""
[[package]]
name = "torch"
version = "2.13.0+cpu"
python-versions = "*"
files = [{{ file = "{TORCH}", hash = "sha256:00" }}]
[metadata]
python-versions = "^3.11"
"""
    roots = poetry.table_dependencies({"torch": "2.13.0+cpu"}, "pyproject.toml")
    pins = poetry.parse_lock(lock, roots, BOOKWORM.lock_target(), "poetry.lock", "pyproject.toml")

    assert [Pin("torch", "2.13.0+cpu", ("sha256:00",))] == pins
