"""Locked dependencies in real images: exact pins, hashes enforced, markers for the image's Python.

Each build costs a minute or two here, so the fixtures are small (Django and PyMySQL, so
nothing compiles) and each build checks as much as it can.
"""

from __future__ import annotations

import json
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.errors import KitError
from tests.integration.conftest import PROJECTS, TEST_REPOSITORY, BuildWithCli

pytestmark = pytest.mark.docker

#: What kitbuild adds to every image that lacks them (PyMySQL is the fixtures' driver).
ADDED = {"gunicorn", "setproctitle"}
#: What `python3 -m venv` seeds by itself (ensurepip brings setuptools below Python 3.12).
SEEDED = {"setuptools"}

_LIST = (
    "import importlib.metadata as m, json;"
    "print(json.dumps({m.metadata(d.metadata['Name'])['Name'].lower().replace('_', '-'):"
    " d.version for d in m.distributions()}))"
)


def installed(gateway: DockerGateway, tag: str) -> dict[str, str]:
    """The image venv's distributions (the runtime has no pip), name -> version."""
    output = gateway.run(tag, ["-c", _LIST], entrypoint="python", network_mode="none")
    data: dict[str, str] = json.loads(output.decode().strip().splitlines()[-1])
    return data


def lock_versions(project: Path) -> dict[str, str]:
    """Every name -> version the fixture's lock file holds, read straight from the file."""
    if (project / "uv.lock").is_file():
        packages = tomllib.loads((project / "uv.lock").read_text())["package"]
        return {p["name"]: p["version"] for p in packages if "editable" not in p["source"]}
    if (project / "poetry.lock").is_file():
        packages = tomllib.loads((project / "poetry.lock").read_text())["package"]
        return {p["name"].lower(): p["version"] for p in packages}
    if (project / "pylock.toml").is_file():
        packages = tomllib.loads((project / "pylock.toml").read_text())["packages"]
        return {p["name"]: p["version"] for p in packages}
    if (project / "Pipfile.lock").is_file():
        data = json.loads((project / "Pipfile.lock").read_text())
        return {
            name: entry["version"].removeprefix("==")
            for section in ("default", "develop")
            for name, entry in data[section].items()
        }
    versions = {}
    for line in (project / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.lstrip().startswith(("#", "-")):
            name, _, version = line.split(" ")[0].partition("==")
            versions[name.lower()] = version
    return versions


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        # redis 5.0.8 needs async-timeout below 3.11.3: bookworm's 3.11.2 gets it (a 3.11.7
        # host would not); legacy-cgi is for >= 3.13 only; the extra and the group are not asked.
        ("lock-uv", {"django", "asgiref", "sqlparse", "pymysql", "redis", "async-timeout"}),
        # asgiref is pinned older than Django alone would pick; pytest is a dev group.
        ("lock-poetry", {"django", "asgiref", "sqlparse", "pymysql"}),
        # tzdata's marker is for Windows; pytest is a dev package.
        ("lock-pipenv", {"django", "asgiref", "sqlparse", "pymysql"}),
        ("lock-pylock", {"django", "asgiref", "sqlparse", "pymysql"}),
        ("hashed-requirements", {"django", "asgiref", "sqlparse", "pymysql"}),
    ],
)
def test_each_lock_installs_exactly_its_pins(
    fixture: str, expected: set[str], build_with_cli: BuildWithCli, gateway: DockerGateway
) -> None:
    """The image holds the lock's packages for its Python at the locked versions, and no other."""
    built = build_with_cli(PROJECTS / fixture)
    assert 0 == built.code, built

    found = installed(gateway, built.tag)
    locked = lock_versions(PROJECTS / fixture)

    assert expected | ADDED == set(found) - SEEDED, built
    assert {name: locked[name] for name in expected} == {name: found[name] for name in expected}
    if fixture == "lock-uv":  # and it runs: redis's asyncio client imports async-timeout
        output = gateway.run(
            built.tag,
            ["-c", "import platform, redis.asyncio; print(platform.python_version())"],
            entrypoint="python",
            network_mode="none",
        )
        assert "3.11.2" == output.decode().strip()


def test_marker_fixture_builds_and_runs_on_trixie(
    build_with_cli: BuildWithCli, gateway: DockerGateway, trixie_build_base: str
) -> None:
    """On Python 3.13 the same lock gives legacy-cgi (>= 3.13 only) and no async-timeout."""
    built = build_with_cli(PROJECTS / "lock-uv", "--base-image", trixie_build_base)
    assert 0 == built.code, built

    found = installed(gateway, built.tag)
    assert "legacy-cgi" in found
    assert "async-timeout" not in found
    assert "Python 3.13" in built.out
    gateway.run(
        built.tag,
        ["-c", "import cgi, redis.asyncio, django"],
        entrypoint="python",
        network_mode="none",
    )


def test_a_tampered_wheel_fails_the_build(tmp_path: Path, gateway: DockerGateway) -> None:
    """With hashes required, a wheel changed after fetching (still a valid zip) stops the build."""
    context = tmp_path / "context"
    code = cli.main(
        ["build", str(PROJECTS / "lock-pylock"), "--render-only", str(context)],
    )
    assert 0 == code
    wheel = next((context / "kitbuild" / "wheels").glob("sqlparse-*.whl"))
    with zipfile.ZipFile(wheel, "a") as archive:  # still a valid wheel, with one module more
        archive.writestr("sqlparse/tampered.py", "print('not what was locked')\n")
    shutil.rmtree(context / "app" / "__pycache__", ignore_errors=True)
    tag = f"{TEST_REPOSITORY}/tampered:1"
    lines: list[str] = []

    try:
        with pytest.raises(KitError):
            gateway.build(context, tag, network_mode="none", on_output=lines.append)
        assert any("Hash mismatch for `sqlparse==" in line for line in lines), lines[-20:]
        assert not gateway.image_exists(tag)
    finally:
        gateway.remove_image(tag)


@pytest.mark.parametrize(
    ("fixture", "file", "old", "new", "message"),
    [
        (
            "lock-poetry",
            "pyproject.toml",
            'asgiref = "3.8.1"',
            'asgiref = "3.8.2"',
            "poetry.lock does not match pyproject.toml: asgiref is locked at 3.8.1, "
            "outside ==3.8.2",
        ),
        (
            "lock-pylock",
            "pylock.toml",
            'requires-python = ">=3.11"',
            'requires-python = "<3.11"',
            "pylock.toml is locked for Python <3.11 (requires-python), but the image's Python "
            "is 3.11.2",
        ),
    ],
)
def test_a_stale_lock_or_one_for_another_python_is_one_line(
    fixture: str,
    file: str,
    old: str,
    new: str,
    message: str,
    tmp_path: Path,
    build_with_cli: BuildWithCli,
    gateway: DockerGateway,
) -> None:
    """The build stops before building: one line naming the file and package, no image."""
    project = tmp_path / fixture
    shutil.copytree(PROJECTS / fixture, project)
    (project / file).write_text((project / file).read_text().replace(old, new))

    built = build_with_cli(project)

    assert 1 == built.code, built
    assert message in built.err
    assert 1 == built.err.count("\n")
    assert not gateway.image_exists(built.tag)
