"""Reading locks and requirement files for the image's Python (no Docker, no network)."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from builder.errors import LockError, ProjectError, ResolveError
from builder.image import dependencies, wheelhouse
from builder.image.dependencies import read_declared
from builder.image.locks import Pin, poetry, uv
from builder.image.locks.pins import locked_version
from builder.image.pipeline import check_complete

PROJECTS = Path(__file__).parent / "fixtures" / "projects"
BOOKWORM = wheelhouse.target_for("3.11.2", "2.36", "x86_64")
HOST_LIKE = wheelhouse.target_for("3.11.7", "2.36", "x86_64")
TRIXIE = wheelhouse.target_for("3.13.5", "2.41", "x86_64")


def declared(name: str, root: Path | None = None) -> dependencies.Declared:
    project = root or PROJECTS / name
    return read_declared(project, project)


def names(pins: tuple[Pin, ...]) -> set[str]:
    return {pin.name for pin in pins}


def copy(name: str, tmp_path: Path) -> Path:
    destination = tmp_path / name
    shutil.copytree(PROJECTS / name, destination)
    return destination


# --------------------------------------------------------------------------- the target


def test_markers_see_the_full_python_of_the_image() -> None:
    """The target's marker environment is the image's CPython on Linux, to the patch level."""
    environment = BOOKWORM.marker_environment()

    assert ("3.11.2", "3.11") == (environment["python_full_version"], environment["python_version"])
    assert ("linux", "x86_64") == (environment["sys_platform"], environment["platform_machine"])


def test_uv_platform_names_go_from_the_newest_glibc_down() -> None:
    """The image's glibc is asked for first, then older ones, then plain Linux."""
    platforms = TRIXIE.uv_platforms()

    assert "x86_64-manylinux_2_41" == platforms[0]
    assert "x86_64-manylinux_2_40" == platforms[1]
    assert "x86_64-unknown-linux-gnu" == platforms[-1]


# --------------------------------------------------------------------------- uv.lock


def test_uv_lock_follows_markers_for_the_image_not_the_host() -> None:
    """async-timeout (python_full_version < 3.11.3) is kept for 3.11.2 and left out for 3.11.7."""
    lock = declared("lock-uv")

    assert "async-timeout" in names(lock.select(BOOKWORM.lock_target()).pins)
    assert "async-timeout" not in names(lock.select(HOST_LIKE.lock_target()).pins)


def test_uv_lock_on_python_313_takes_the_313_only_dependency() -> None:
    """legacy-cgi (python_version >= 3.13) comes on trixie only; optional parts stay out."""
    pins = declared("lock-uv").select(TRIXIE.lock_target()).pins

    assert {"django", "asgiref", "sqlparse", "pymysql", "redis", "legacy-cgi"} == names(pins)
    assert all(pin.hashes and pin.hashes[0].startswith("sha256:") for pin in pins)


def test_uv_lock_groups_add_extras_and_dependency_groups() -> None:
    """An extra (cache) and a dependency group (dev) are installed only when asked for."""
    pins = declared("lock-uv").select(BOOKWORM.lock_target(), ["cache", "dev"]).pins

    assert {"django-redis", "pytest"} <= names(pins)


def test_unknown_group_is_named_with_the_known_ones() -> None:
    """A group the lock does not have is one line listing those it has."""
    with pytest.raises(
        LockError, match=r"uv.lock has no group or extra 'docs'; it has: cache, dev"
    ):
        declared("lock-uv").select(BOOKWORM.lock_target(), ["docs"])


def test_uv_lock_missing_a_manifest_dependency_is_refused(tmp_path: Path) -> None:
    """A dependency added to pyproject.toml after locking: the lock does not match."""
    project = copy("lock-uv", tmp_path)
    manifest = project / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('"redis==5.0.8",', '"redis==5.0.8", "idna",'))

    with pytest.raises(LockError) as error:
        declared("", project).select(BOOKWORM.lock_target())
    assert "uv.lock does not match pyproject.toml: idna is not in the lock" in str(error.value)


def test_uv_lock_version_outside_the_manifest_is_refused(tmp_path: Path) -> None:
    """The manifest now wants another redis than the locked one: named, with both."""
    project = copy("lock-uv", tmp_path)
    manifest = project / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace("redis==5.0.8", "redis==5.0.7"))

    with pytest.raises(LockError, match=r"redis is locked at 5.0.8, outside ==5.0.7"):
        declared("", project).select(BOOKWORM.lock_target())


def test_lock_for_another_python_names_file_and_python() -> None:
    """A lock whose requires-python excludes the image's Python is refused, naming both."""
    older = wheelhouse.target_for("3.10.12", "2.35", "x86_64")

    with pytest.raises(LockError) as error:
        declared("lock-uv").select(older.lock_target())
    assert "uv.lock is locked for Python >=3.11" in str(error.value)
    assert "the image's Python is 3.10.12" in str(error.value)


def test_lock_with_no_file_for_the_platform_is_refused() -> None:
    """A package locked with wheels for other platforms only, and no sdist, is named."""
    text = """
version = 1
requires-python = ">=3.11"
[[package]]
name = "app"
version = "1.0"
source = { virtual = "." }
dependencies = [{ name = "fastlib" }]
[[package]]
name = "fastlib"
version = "2.0"
source = { registry = "https://index.invalid/simple" }
wheels = [
  { url = "https://index.invalid/fastlib-2.0-cp311-cp311-win_amd64.whl", hash = "sha256:00" },
]
"""
    with pytest.raises(
        LockError, match=r"has no file of fastlib 2.0 for the image's Python 3.11.2"
    ):
        uv.parse_lock(text, BOOKWORM.lock_target(), (), "uv.lock")


# --------------------------------------------------------------------------- poetry.lock


def test_poetry_lock_gives_main_dependencies_at_their_locked_versions() -> None:
    """Poetry's ^ and ~ constraints are read; the dev group stays out unless asked for."""
    lock = declared("lock-poetry")
    pins = {pin.name: pin.version for pin in lock.select(BOOKWORM.lock_target()).pins}
    with_dev = lock.select(BOOKWORM.lock_target(), ["dev"]).pins

    assert {"django", "asgiref", "sqlparse", "pymysql"} == set(pins)
    assert "3.8.1" == pins["asgiref"]
    assert "pytest" in names(with_dev)


def test_poetry_lock_mismatch_names_the_package(tmp_path: Path) -> None:
    """A pin changed in pyproject.toml after locking: poetry.lock does not match it."""
    project = copy("lock-poetry", tmp_path)
    manifest = project / "pyproject.toml"
    manifest.write_text(manifest.read_text().replace('asgiref = "3.8.1"', 'asgiref = "3.8.2"'))

    with pytest.raises(LockError) as error:
        declared("", project).select(BOOKWORM.lock_target())
    assert "poetry.lock does not match pyproject.toml: asgiref is locked at 3.8.1" in str(
        error.value
    )


POETRY_EXTRAS_LOCK = """
[[package]]
name = "daphne"
version = "4.1.2"
optional = false
python-versions = ">=3.8"
files = [{file = "daphne-4.1.2-py3-none-any.whl", hash = "sha256:aa"}]

[package.dependencies]
twisted = {version = ">=22.4", extras = ["tls"]}

[[package]]
name = "twisted"
version = "24.10.0"
optional = false
python-versions = ">=3.8.0"
files = [{file = "twisted-24.10.0-py3-none-any.whl", hash = "sha256:bb"}]

[package.dependencies]
attrs = ">=22.2.0"
pyopenssl = {version = ">=21.0.0", optional = true, markers = "extra == \\"tls\\""}
h2 = {version = ">=3.2", optional = true, markers = "extra == \\"http2\\""}

[package.extras]
tls = ["pyopenssl (>=21.0.0)"]
http2 = ["h2 (>=3.2)"]

[[package]]
name = "attrs"
version = "24.2.0"
optional = false
python-versions = ">=3.7"
files = [{file = "attrs-24.2.0-py3-none-any.whl", hash = "sha256:cc"}]

[[package]]
name = "pyopenssl"
version = "24.2.1"
optional = false
python-versions = ">=3.7"
files = [{file = "pyOpenSSL-24.2.1-py3-none-any.whl", hash = "sha256:dd"}]

[[package]]
name = "h2"
version = "4.1.0"
optional = false
python-versions = ">=3.6.1"
files = [{file = "h2-4.1.0-py3-none-any.whl", hash = "sha256:ee"}]

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
"""


def test_poetry_lock_follows_a_dependency_with_extras() -> None:
    """A dependency asked with an extra brings that extra's packages, and no other extra's.

    daphne needs twisted[tls]: the lock's `extra == "tls"` dependencies come too; http2's stay
    out.
    """
    roots = [poetry.table_dependencies({"daphne": "^4.1"}, "pyproject.toml")[0]]

    pins = poetry.parse_lock(
        POETRY_EXTRAS_LOCK, roots, BOOKWORM.lock_target(), "poetry.lock", "pyproject.toml"
    )

    assert {"daphne", "twisted", "attrs", "pyopenssl"} == {pin.name for pin in pins}


def test_poetry_constraints_become_pep440() -> None:
    """Caret, tilde and wildcard constraints mean what Poetry says they mean."""
    assert SpecifierSet(">=5.1.2,<6.0.0") == poetry.pep440_specifier("^5.1.2")
    assert SpecifierSet(">=5.2,<5.3") == poetry.pep440_specifier("~5.2")
    assert SpecifierSet("==3.8.1") == poetry.pep440_specifier("3.8.1")
    assert SpecifierSet() == poetry.pep440_specifier("*")


# --------------------------------------------------------------------------- Pipfile.lock


def test_pipfile_lock_evaluates_markers_and_categories() -> None:
    """The Windows-only tzdata is left out on Linux; develop comes with the dev group."""
    lock = declared("lock-pipenv")

    assert {"django", "asgiref", "sqlparse", "pymysql"} == names(
        lock.select(BOOKWORM.lock_target()).pins
    )
    assert "pytest" in names(lock.select(BOOKWORM.lock_target(), ["dev"]).pins)


def test_pipfile_lock_for_another_python_is_refused(tmp_path: Path) -> None:
    """A Pipfile.lock made for Python 3.12 is refused on bookworm's 3.11.2."""
    project = copy("lock-pipenv", tmp_path)
    path = project / "Pipfile.lock"
    data = json.loads(path.read_text())
    data["_meta"]["requires"] = {"python_version": "3.12"}
    path.write_text(json.dumps(data))

    with pytest.raises(LockError, match=r"Pipfile.lock is locked for Python 3.12 .* is 3.11.2"):
        declared("", project).select(BOOKWORM.lock_target())


def test_pipfile_lock_missing_a_pipfile_package_is_refused(tmp_path: Path) -> None:
    """A package added to the Pipfile after locking is named."""
    project = copy("lock-pipenv", tmp_path)
    (project / "Pipfile").write_text(
        (project / "Pipfile").read_text().replace('pymysql = "*"', 'pymysql = "*"\nidna = "*"')
    )

    with pytest.raises(LockError, match=r"Pipfile.lock does not match Pipfile: idna is not in"):
        declared("", project).select(BOOKWORM.lock_target())


# --------------------------------------------------------------------------- pylock.toml


def test_pylock_is_selected_with_packaging_for_the_target() -> None:
    """PEP 751's selection (packaging.pylock) gives the packages with their hashes."""
    pins = declared("lock-pylock").select(BOOKWORM.lock_target()).pins

    assert {"django", "asgiref", "sqlparse", "pymysql"} == names(pins)
    assert "0.5.3" == locked_version(pins, "sqlparse")
    assert all(pin.hashes for pin in pins)


def test_pylock_for_a_newer_python_is_refused(tmp_path: Path) -> None:
    """requires-python >= 3.12 in pylock.toml stops a 3.11.2 build, naming both."""
    project = copy("lock-pylock", tmp_path)
    path = project / "pylock.toml"
    path.write_text(
        path.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    )

    with pytest.raises(LockError, match=r"pylock.toml is locked for Python >=3.12"):
        declared("", project).select(BOOKWORM.lock_target())


# --------------------------------------------------------------------------- requirements


def test_hashed_requirements_are_a_lock() -> None:
    """--hash lines are kept as pins with their hashes; no index named, none attached."""
    found = declared("hashed-requirements")
    selection = found.select(BOOKWORM.lock_target())

    assert selection.locked
    assert {"django", "asgiref", "sqlparse", "pymysql"} == names(selection.pins)
    assert all(len(pin.hashes) >= 1 for pin in selection.pins)
    assert all(pin.indexes == () for pin in selection.pins)
    assert () == found.notes


def test_a_requirement_without_hash_among_hashed_ones_is_refused(tmp_path: Path) -> None:
    """Hash-checking mode (pip's) needs every line hashed: the bare line is named."""
    project = copy("hashed-requirements", tmp_path)
    path = project / "requirements.txt"
    path.write_text(path.read_text() + "idna==3.10\n")

    with pytest.raises(LockError, match=r"requirements.txt:\d+: idna needs an exact ==version"):
        declared("", project).select(BOOKWORM.lock_target())


def test_unlocked_requirements_are_left_to_the_resolver() -> None:
    """Plain requirements are not pins: they go to the resolver as written."""
    selection = declared("dburl-app").select(BOOKWORM.lock_target())

    assert not selection.locked
    assert "PyMySQL>=1.2,<2" in selection.unresolved


# --------------------------------------------------------------------------- preference


def test_a_lock_wins_over_requirements_and_pyproject(tmp_path: Path) -> None:
    """uv.lock is read even when requirements.txt sits beside it."""
    project = copy("lock-uv", tmp_path)
    (project / "requirements.txt").write_text("Django\n")

    assert "uv.lock" == declared("", project).format.name


def test_requirements_win_over_pyproject_and_a_named_file_wins_over_all(tmp_path: Path) -> None:
    """requirements.txt before [project]; --requirements names the file to read."""
    project = copy("lock-pylock", tmp_path)
    (project / "pylock.toml").unlink()
    (project / "requirements.txt").write_text("Django>=5.2,<5.3\n")

    assert "requirements" == declared("", project).format.name
    named = read_declared(project, project, Path("pyproject.toml"))
    assert "pyproject.toml" == named.format.name


def test_several_requirement_files_ask_for_a_choice(tmp_path: Path) -> None:
    """Without requirements.txt, two requirements-*.txt files are named, with the flag."""
    project = copy("dburl-app", tmp_path)
    (project / "requirements.txt").rename(project / "requirements-prod.txt")
    (project / "requirements-dev.txt").write_text("pytest\n")

    with pytest.raises(ProjectError, match=r"several requirements files .* --requirements FILE"):
        declared("", project)


# --------------------------------------------------------------------------- the resolver


def test_resolver_is_asked_for_the_target_and_falls_back_on_platform_names() -> None:
    """The resolver gets the full Python version; an unknown platform name is retried older."""
    calls: list[list[str]] = []

    def uv(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        platform = args[args.index("--python-platform") + 1]
        if platform == "x86_64-manylinux_2_41":
            return subprocess.CompletedProcess(
                args, 2, "", "error: invalid value for '--python-platform'"
            )
        return subprocess.CompletedProcess(args, 0, "django==5.2.19\nasgiref==3.13.0\n", "")

    def pip(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            args, 0, "global.index-url='https://mirror.invalid/simple'\n", ""
        )

    pins = wheelhouse.resolve(["Django>=5.2,<5.3"], TRIXIE, uv=uv, pip=pip)

    assert [Pin("django", "5.2.19"), Pin("asgiref", "3.13.0")] == pins
    assert ["x86_64-manylinux_2_41", "x86_64-manylinux_2_40"] == [
        call[call.index("--python-platform") + 1] for call in calls
    ]
    assert "3.13.5" == calls[-1][calls[-1].index("--python-version") + 1]


def test_unlocked_pyproject_groups_include_other_groups(tmp_path: Path) -> None:
    """An extra and a PEP 735 group (with include-group) add their lines when asked for."""
    project = copy("lock-pylock", tmp_path)
    (project / "pylock.toml").unlink()
    manifest = project / "pyproject.toml"
    manifest.write_text(
        manifest.read_text()
        + '\n[project.optional-dependencies]\ncache = ["django-redis>=5"]\n'
        + '\n[dependency-groups]\nlint = ["ruff"]\ndev = ["pytest", {include-group = "lint"}]\n'
    )
    found = declared("", project)

    assert "django-redis>=5" not in found.select(BOOKWORM.lock_target()).unresolved
    assert {"django-redis>=5", "pytest", "ruff"} <= set(
        found.select(BOOKWORM.lock_target(), ["cache", "dev"]).unresolved
    )


def test_unlocked_poetry_dependencies_become_requirements(tmp_path: Path) -> None:
    """Without poetry.lock, [tool.poetry.dependencies] are resolved as PEP 508 lines."""
    project = copy("lock-poetry", tmp_path)
    (project / "poetry.lock").unlink()
    found = declared("", project)

    assert "pyproject.toml" == found.format.name
    assert {"django<5.3,>=5.2", "pymysql<2.0,>=1.1", "asgiref==3.8.1"} == set(
        found.select(BOOKWORM.lock_target()).unresolved
    )


def wheel(directory: Path, name: str, version: str, *requires: str) -> Path:
    """A minimal wheel whose METADATA lists ``requires`` as Requires-Dist."""
    path = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {line}\n" for line in requires)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}-{version}.dist-info/METADATA", metadata)
    return path


def test_a_dependency_only_the_images_python_needs_is_found_unpinned(tmp_path: Path) -> None:
    """Redis needs async-timeout below 3.11.3: missing for bookworm's 3.11.2, not for 3.11.7."""
    wheel(tmp_path, "redis", "5.0.1", 'async-timeout>=4.0.2; python_full_version < "3.11.3"')
    pins = [Pin("redis", "5.0.1")]

    missing = wheelhouse.unpinned_dependencies(pins, tmp_path, BOOKWORM)

    assert [(m.name, m.needed_by) for m in missing] == [("async-timeout", "redis 5.0.1")]
    assert wheelhouse.unpinned_dependencies(pins, tmp_path, HOST_LIKE) == []


def test_pinned_dependencies_extras_and_other_platforms_are_not_missing(tmp_path: Path) -> None:
    """A pinned dependency (any spelling), an extra's or another OS's is no gap."""
    wheel(
        tmp_path,
        "django",
        "4.2.11",
        "asgiref<4,>=3.6.0",
        "sqlparse>=0.3.1",
        'tzdata; sys_platform == "win32"',
        'argon2-cffi>=19.1.0; extra == "argon2"',
    )
    wheel(tmp_path, "asgiref", "3.8.1", 'typing_extensions>=4; python_version < "3.11"')
    pins = [Pin("django", "4.2.11"), Pin("asgiref", "3.8.1"), Pin("sqlparse", "0.5.0")]

    assert wheelhouse.unpinned_dependencies(pins, tmp_path, BOOKWORM) == []
    assert [m.name for m in wheelhouse.unpinned_dependencies(pins[:2], tmp_path, TRIXIE)] == [
        "sqlparse"
    ]


def test_an_incomplete_lock_is_one_line_naming_file_package_and_python(tmp_path: Path) -> None:
    """The build stops on the host, before Docker, saying what to pin and how to relock."""
    wheel(tmp_path, "redis", "5.0.1", 'async-timeout>=4.0.2; python_full_version < "3.11.3"')

    with pytest.raises(ResolveError) as raised:
        check_complete("requirements.txt", [Pin("redis", "5.0.1")], tmp_path, BOOKWORM)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        "requirements.txt does not pin async-timeout, which redis 5.0.1 needs on the image's "
        "Python 3.11.2"
    )
    assert "--python-version 3.11.2" in message
    check_complete("requirements.txt", [Pin("redis", "5.0.1")], tmp_path, HOST_LIKE)
