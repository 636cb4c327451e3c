"""Requirements from a git repository or an archive URL: read, built on the host, recorded.

The real tests serve a git repository on 127.0.0.1 (tests/vcs_server.py) and build its
package with pip and git on the host; no package index is asked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from builder import cli
from builder.errors import LockError, ProjectError, ResolveError
from builder.image import direct, wheelhouse
from builder.image.dependencies import read_declared
from builder.image.locks import Pin, pipenv, poetry, pylock, uv
from builder.image.pipeline import BuildOptions, ContextDirectory, build_project
from tests.fakes import FakeBases, fake_resolve
from tests.vcs_server import DEAD, Served, make_repository, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parent.parent
PROJECTS = Path(__file__).parent / "fixtures" / "projects"
BOOKWORM = wheelhouse.target_for("3.11.2", "2.36", "x86_64")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(name="served")
def _served(tmp_path: Path) -> Iterator[Served]:
    """A directory of tmp_path served over HTTP on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    yield from serve(root)


@pytest.fixture(name="offline")
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither pip nor uv may ask an index (theirs point where nothing listens); no cache."""
    for name in ("PIP_INDEX_URL", "UV_INDEX_URL"):
        monkeypatch.setenv(name, f"{DEAD}/simple")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")


def vcs_project(tmp_path: Path, repository: str, ref: str = "v0.3") -> Path:
    """The vcs-requirement fixture with its git line pointing at ``repository`` and ``ref``."""
    project = tmp_path / "site"
    shutil.copytree(PROJECTS / "vcs-requirement", project)
    path = project / "requirements.txt"
    line = "tinypkg @ git+http://127.0.0.1:9/tinypkg.git@v0.3"
    path.write_text(path.read_text().replace(line, f"tinypkg @ git+{repository}@{ref}"))
    return project


# --------------------------------------------------------------------------- reading


def test_a_git_line_in_hashed_requirements_is_a_pin_with_its_url() -> None:
    """A git requirement needs no --hash (its commit is its hash); it keeps its URL."""
    selection = read_declared(PROJECTS / "vcs-requirement", PROJECTS / "vcs-requirement").select(
        BOOKWORM.lock_target()
    )
    found = {pin.name: pin for pin in selection.pins}

    assert selection.locked
    assert Pin("tinypkg", "", url="git+http://127.0.0.1:9/tinypkg.git@v0.3") == found["tinypkg"]


def test_an_archive_url_among_hashed_requirements_needs_a_hash(tmp_path: Path) -> None:
    """In pip's hash-checking mode an archive URL without --hash is refused, naming its line."""
    (tmp_path / "requirements.txt").write_text(
        f"django==5.2.19 --hash=sha256:{'0' * 64}\nextra @ https://files.invalid/extra-1.0.tar.gz\n"
    )

    with pytest.raises(LockError, match=r"requirements.txt:2: extra needs --hash"):
        read_declared(tmp_path, tmp_path).select(BOOKWORM.lock_target())


def test_unlocked_url_requirements_go_to_the_resolver_and_other_vcs_are_refused(
    tmp_path: Path,
) -> None:
    """A git or archive URL is left to the resolver as written; Mercurial is one clear line."""
    (tmp_path / "requirements.txt").write_text(
        "Django>=5.2,<5.3\ntinypkg @ git+https://git.invalid/tinypkg.git@main\n"
    )
    selection = read_declared(tmp_path, tmp_path).select(BOOKWORM.lock_target())
    (tmp_path / "requirements.txt").write_text("tool @ hg+https://hg.invalid/tool\n")

    assert "tinypkg @ git+https://git.invalid/tinypkg.git@main" in selection.unresolved
    with pytest.raises(ProjectError, match=r"requirements.txt:1: tool comes from .* git"):
        read_declared(tmp_path, tmp_path)


UV_LOCK = """
version = 1
requires-python = ">=3.11"
[[package]]
name = "app"
version = "1.0"
source = { virtual = "." }
dependencies = [{ name = "tinypkg" }, { name = "extra" }]
[[package]]
name = "tinypkg"
version = "0.3"
source = { git = "https://git.invalid/tinypkg.git?tag=v0.3&subdirectory=src#COMMIT" }
[[package]]
name = "extra"
version = "1.0"
source = { url = "https://files.invalid/extra-1.0-py3-none-any.whl" }
wheels = [{ url = "https://files.invalid/extra-1.0-py3-none-any.whl", hash = "sha256:aa" }]
""".replace("COMMIT", COMMIT)


def test_uv_lock_git_and_url_sources_become_pins_with_their_url() -> None:
    """A git source of uv.lock: its locked commit (subdirectory kept); a URL keeps its hashes."""
    pins = {pin.name: pin for pin in uv.parse_lock(UV_LOCK, BOOKWORM.lock_target(), (), "uv.lock")}

    assert f"git+https://git.invalid/tinypkg.git@{COMMIT}#subdirectory=src" == pins["tinypkg"].url
    assert "0.3" == pins["tinypkg"].version
    assert (
        Pin("extra", "1.0", ("sha256:aa",), url="https://files.invalid/extra-1.0-py3-none-any.whl")
        == (pins["extra"])
    )


def test_poetry_lock_git_source_is_pinned_at_its_resolved_reference() -> None:
    """Poetry's [package.source] type git: the resolved commit, not the branch asked for."""
    lock = f"""
[[package]]
name = "tinypkg"
version = "0.3"
python-versions = "*"
files = []
[package.source]
type = "git"
url = "https://git.invalid/tinypkg.git"
reference = "main"
resolved_reference = "{COMMIT}"
[metadata]
python-versions = "^3.11"
"""
    roots = poetry.table_dependencies(
        {"tinypkg": {"git": "https://git.invalid/tinypkg.git", "branch": "main"}}, "pyproject.toml"
    )
    pins = poetry.parse_lock(lock, roots, BOOKWORM.lock_target(), "poetry.lock", "pyproject.toml")

    assert [Pin("tinypkg", "0.3", url=f"git+https://git.invalid/tinypkg.git@{COMMIT}")] == pins


def test_pipfile_lock_git_entry_is_pinned_at_its_ref() -> None:
    """Pipenv's git entry (no version) is a pin by URL, at the ref the lock holds."""
    lock = json.dumps(
        {
            "_meta": {"requires": {}},
            "default": {"tinypkg": {"git": "https://git.invalid/tinypkg.git", "ref": COMMIT}},
        }
    )

    pins = pipenv.parse_lock(lock, BOOKWORM.lock_target(), [], "Pipfile.lock")

    assert [Pin("tinypkg", "", url=f"git+https://git.invalid/tinypkg.git@{COMMIT}")] == pins


def test_pylock_vcs_package_is_pinned_at_its_commit() -> None:
    """PEP 751's vcs table (git, commit-id) is a pin by URL."""
    lock = f"""
lock-version = "1.0"
created-by = "tests"
requires-python = ">=3.11"
[[packages]]
name = "tinypkg"
version = "0.3"
vcs = {{ type = "git", url = "https://git.invalid/tinypkg.git", commit-id = "{COMMIT}" }}
"""
    pins = pylock.parse_lock(lock, BOOKWORM.lock_target(), (), "pylock.toml")

    assert [Pin("tinypkg", "0.3", url=f"git+https://git.invalid/tinypkg.git@{COMMIT}")] == pins


def test_unlocked_poetry_git_dependency_becomes_a_pep508_url() -> None:
    """[tool.poetry.dependencies] tinypkg = {git, tag} resolves as ``tinypkg @ git+URL@tag``."""
    pyproject = {
        "tool": {
            "poetry": {
                "dependencies": {
                    "python": "^3.11",
                    "tinypkg": {"git": "https://git.invalid/tinypkg.git", "tag": "v0.3"},
                }
            }
        }
    }

    assert ["tinypkg @ git+https://git.invalid/tinypkg.git@v0.3"] == poetry.requirement_lines(
        pyproject, (), "pyproject.toml"
    )


# --------------------------------------------------------------------------- building


@pytest.mark.usefixtures("offline")
def test_git_requirement_is_built_pinned_by_hash_and_its_commit_recorded(
    tmp_path: Path, served: Served
) -> None:
    """The fixture's git line at a tag: cloned, built, hashed, and the tag's commit recorded."""
    commit = make_repository(served, tmp_path)
    project = vcs_project(tmp_path, f"{served.url}/tinypkg.git")
    pins = read_declared(project, project).select(BOOKWORM.lock_target()).pins
    wanted = [pin for pin in pins if pin.name == "tinypkg"]

    fetched = wheelhouse.fetch(wanted, BOOKWORM, tmp_path / "wheels", say=lambda _line: None)

    wheel = fetched.directory / "tinypkg-0.3-py3-none-any.whl"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (f"tinypkg==0.3 --hash=sha256:{digest}",) == fetched.requirements
    assert "VALUE = 3" in zipfile.ZipFile(wheel).read("tinypkg.py").decode()
    assert [
        {
            "name": "tinypkg",
            "version": "0.3",
            "vcs": "git",
            "repository": f"{served.url}/tinypkg.git",
            "commit": commit,
            "requested": "v0.3",
            "url": f"git+{served.url}/tinypkg.git@{commit}",
        }
    ] == direct.read_sources(fetched.directory)


@pytest.mark.usefixtures("offline")
def test_unlocked_git_requirement_is_resolved_to_its_commit_then_built(
    tmp_path: Path, served: Served
) -> None:
    """The resolver turns a git ref into its commit; the fetch builds the wheel there."""
    commit = make_repository(served, tmp_path)
    (tmp_path / "requirements.txt").write_text(f"tinypkg @ git+{served.url}/tinypkg.git@v0.3\n")
    selection = read_declared(tmp_path, tmp_path).select(BOOKWORM.lock_target())

    pins = wheelhouse.resolve(selection.unresolved, BOOKWORM, indexes=selection.indexes)
    fetched = wheelhouse.fetch(pins, BOOKWORM, tmp_path / "wheels", say=lambda _line: None)

    assert [Pin("tinypkg", "", url=f"git+{served.url}/tinypkg.git@{commit}")] == pins
    assert fetched.requirements[0].startswith("tinypkg==0.3 --hash=sha256:")
    assert commit == direct.read_sources(fetched.directory)[0]["commit"]


def test_an_unreachable_repository_is_one_line_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build whose git line names a repository nobody serves; exit 1, one line."""
    monkeypatch.setattr("builder.commands.build.NamedBases", lambda *_a, **_k: FakeBases())
    err = io.StringIO()

    code = cli.main(
        ["build", str(PROJECTS / "vcs-requirement"), "--render-only", str(tmp_path / "out")],
        env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)},
        stdout=io.StringIO(),
        stderr=err,
    )

    assert 1 == code
    assert err.getvalue().startswith(
        "kitbuild: error: cannot fetch tinypkg @ git+http://127.0.0.1:9/tinypkg.git@v0.3: "
        "git cannot clone http://127.0.0.1:9/tinypkg.git ("
    )
    assert "check the URL and that this machine can reach it" in err.getvalue()
    assert 1 == err.getvalue().count("\n")
    assert "Traceback" not in err.getvalue()
    assert not (tmp_path / "out").exists()
    assert [] == list((tmp_path / "cache" / "kitbuild" / "wheelhouse").iterdir())


def test_a_ref_the_repository_lacks_is_named(tmp_path: Path, served: Served) -> None:
    """A tag that does not exist: one line naming the requirement and the ref to fix."""
    make_repository(served, tmp_path)
    project = vcs_project(tmp_path, f"{served.url}/tinypkg.git", ref="v9")

    with pytest.raises(ResolveError) as error:
        build_project(
            BuildOptions(project_dir=project),
            sources=FakeBases(),
            publisher=ContextDirectory(tmp_path / "out"),
            resolve=fake_resolve,
            say=lambda _line: None,
            workdir=tmp_path,
        )

    assert (
        f"cannot fetch tinypkg @ git+{served.url}/tinypkg.git@v9: {served.url}/tinypkg.git has "
        "no branch, tag or commit 'v9'; fix the ref, or re-lock the project"
    ) == str(error.value)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- credentials


class FakeTools:
    """git and pip as the fetch runs them: record each call; pip wheel writes tinypkg's wheel."""

    def __init__(self, *, clone_fails: bool = False) -> None:
        """No call yet."""
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.clone_fails = clone_fails

    def git(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Clone (or fail to, naming the URL with its password, as git may) and name COMMIT."""
        self.calls.append((args, env))
        if args[0] == "clone" and self.clone_fails:
            return subprocess.CompletedProcess(
                args, 128, "", "fatal: unable to access 'https://me:s3cret@git.invalid/': 403\n"
            )
        if args[0] == "clone":
            Path(args[-1]).mkdir(parents=True)
        return subprocess.CompletedProcess(args, 0, COMMIT + "\n", "")

    def pip(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        """Write the wheel into --wheel-dir."""
        self.calls.append((args, env))
        out = Path(args[args.index("--wheel-dir") + 1])
        out.mkdir(parents=True)
        with zipfile.ZipFile(out / "tinypkg-0.3-py3-none-any.whl", "w") as archive:
            archive.writestr("tinypkg.py", "VALUE = 3\n")
        return subprocess.CompletedProcess(args, 0, "", "")


def test_a_credential_in_the_url_goes_to_git_by_environment_and_is_never_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """${GIT_TOKEN} is expanded for git's header only: not in its arguments, nor the record."""
    monkeypatch.setenv("GIT_TOKEN", "s3cret")
    tools = FakeTools()
    pin = Pin("tinypkg", "0.3", url="git+https://me:${GIT_TOKEN}@git.invalid/tinypkg.git@main")

    fetched = wheelhouse.fetch([pin], BOOKWORM, tmp_path, pip=tools.pip, git=tools.git)

    clone_args, clone_env = next(call for call in tools.calls if call[0][0] == "clone")
    assert "https://git.invalid/tinypkg.git" in clone_args
    assert "s3cret" not in " ".join(arg for args, _ in tools.calls for arg in args)
    assert "Authorization: Basic bWU6czNjcmV0" == clone_env["GIT_CONFIG_VALUE_0"]
    assert "s3cret" not in (tmp_path / direct.SOURCES_FILE).read_text()
    assert "https://git.invalid/tinypkg.git" == direct.read_sources(tmp_path)[0]["repository"]
    assert fetched.requirements[0].startswith("tinypkg==0.3 --hash=sha256:")


def test_a_failed_clone_says_so_without_the_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error line of git may carry the URL's password: the message strips it."""
    monkeypatch.setenv("GIT_TOKEN", "s3cret")
    pin = Pin("tinypkg", "0.3", url="git+https://me:${GIT_TOKEN}@git.invalid/tinypkg.git@main")
    tools = FakeTools(clone_fails=True)

    with pytest.raises(ResolveError) as error:
        wheelhouse.fetch([pin], BOOKWORM, tmp_path, pip=tools.pip, git=tools.git)

    assert "s3cret" not in str(error.value)
    assert "GIT_TOKEN" not in str(error.value)
    assert "git cannot clone https://git.invalid/tinypkg.git" in str(error.value)


def test_a_locked_version_the_repository_does_not_build_is_refused(tmp_path: Path) -> None:
    """The lock says 0.4, the commit builds 0.3: re-lock, in one line."""
    pin = Pin("tinypkg", "0.4", url=f"git+https://git.invalid/tinypkg.git@{COMMIT}")
    tools = FakeTools()

    with pytest.raises(ResolveError, match=r"builds version 0.3, but 0.4 is locked: re-lock"):
        wheelhouse.fetch([pin], BOOKWORM, tmp_path, pip=tools.pip, git=tools.git)


# --------------------------------------------------------------------------- the SBOM


def load_sbom_script() -> Any:
    """images/app/sbom.py, the build stage's script, as a module."""
    spec = importlib.util.spec_from_file_location("kit_sbom", ROOT / "images" / "app" / "sbom.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_sbom_names_the_repository_and_commit_and_validates(tmp_path: Path) -> None:
    """A component built from git gets a vcs reference and its commit; the BOM stays valid."""
    from cyclonedx.schema import SchemaVersion  # noqa: PLC0415 (the test extra's)
    from cyclonedx.validation.json import JsonStrictValidator  # noqa: PLC0415

    record = {
        "name": "tinypkg",
        "version": "0.3",
        "vcs": "git",
        "repository": "https://git.invalid/tinypkg.git",
        "commit": COMMIT,
        "requested": "v0.3",
        "url": f"git+https://git.invalid/tinypkg.git@{COMMIT}",
    }
    direct.write_sources(tmp_path, [record])
    component: dict[str, Any] = {
        "type": "library",
        "name": "tinypkg",
        "version": "0.3",
        "bom-ref": "tinypkg",
    }
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [component]}

    load_sbom_script().add_sources(bom["components"], tmp_path)

    assert [
        {"type": "vcs", "url": "https://git.invalid/tinypkg.git", "comment": f"commit {COMMIT}"}
    ] == component["externalReferences"]
    assert {"name": "kitbuild:vcs:commit", "value": COMMIT} in component["properties"]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
