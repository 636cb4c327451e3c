"""Base-image and dependency-fetch failures that need no Docker: one clear line each."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import pytest

from builder import cli
from builder.errors import BaseImageError
from builder.image import bases, wheelhouse
from builder.image.locks import Pin
from tests.fakes import FakeImages

PROJECTS = Path(__file__).parent / "fixtures" / "projects"


def test_missing_mmdebstrap_says_what_to_install() -> None:
    """With no base image and no mmdebstrap, the error names both fixes."""
    images = FakeImages()

    with pytest.raises(BaseImageError) as error:
        bases.ensure_suite(
            "bookworm",
            images,
            which=lambda _name: None,
            say=lambda _line: None,
        )

    assert "mmdebstrap, which makes it, is not installed" in str(error.value)
    assert "apt-get install mmdebstrap" in str(error.value)
    assert "--base-image" in str(error.value)
    assert [] == images.imported


def test_failed_mmdebstrap_reports_its_last_line() -> None:
    """A failing mmdebstrap run is reported with the line it ended on, nothing imported."""

    def failing(argv: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess([], 1, "", "E: cannot reach the mirror\n")

    images = FakeImages()

    with pytest.raises(BaseImageError, match=r"mmdebstrap failed for .*cannot reach"):
        bases.make_base_image(
            "runtime",
            "bookworm",
            images,
            runner=failing,
            which=lambda _name: "/usr/bin/mmdebstrap",
            say=lambda _line: None,
        )
    assert [] == images.imported


def test_mmdebstrap_command_is_small_and_merged_usr() -> None:
    """The rootfs is minbase, merged-/usr (no perl), without docs, man pages or locales."""
    argv = bases.mmdebstrap_command("bookworm", ["python3"], Path("/tmp/x.tar"))

    assert "--variant=minbase" in argv
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in argv
    assert ["bookworm", "/tmp/x.tar"] == argv[-2:]


@pytest.mark.parametrize(
    ("requirement", "suite"),
    [
        ("Django>=5.2,<5.3", "bookworm"),
        ("Django==5.2.*", "bookworm"),
        ("django", "bookworm"),
        ("Django>=6.0,<6.1", "trixie"),
        ("Django==6.0.1", "trixie"),
        ("Django~=6.1", "trixie"),
        ("Django[argon2]>=4.2", "bookworm"),
    ],
)
def test_suite_follows_the_django_requirement(requirement: str, suite: str) -> None:
    """Django 6 needs Python >= 3.12 (trixie); anything older runs on bookworm."""
    assert suite == bases.choose_suite(requirement).name


@pytest.mark.network
@pytest.mark.docker  # the base image is asked for its Python, even for --render-only
def test_unresolvable_requirement_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    """A requirement no index has: one line naming it; the --render-only dir is not made."""
    err = io.StringIO()
    code = cli.main(
        ["build", str(PROJECTS / "bad-unresolvable"), "--render-only", str(tmp_path / "out")],
        stdout=io.StringIO(),
        stderr=err,
    )

    assert 1 == code
    assert "cannot resolve the requirements for Python 3.11.2" in err.getvalue()
    assert "kitbuild-test-no-such-package was not found" in err.getvalue()
    assert 1 == err.getvalue().count("\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.network
def test_source_only_package_comes_with_its_build_requirements(tmp_path: Path) -> None:
    """Mysqlclient has no wheel: its sdist and build backend come, its line hashes the sdist."""
    target = wheelhouse.target_for("3.11.2", "2.36", "x86_64")
    fetched = wheelhouse.fetch(
        [Pin("mysqlclient", "2.2.7")], target, tmp_path / "wheels", say=lambda _line: None
    )
    names = sorted(path.name.split("-")[0].lower() for path in fetched.directory.iterdir())
    archive = next(fetched.directory.glob("mysqlclient-*.tar.gz"))

    assert ("mysqlclient",) == fetched.from_source
    assert ["mysqlclient", "setuptools"] == names
    assert (
        f"mysqlclient==2.2.7 --hash=sha256:{hashlib.sha256(archive.read_bytes()).hexdigest()}",
    ) == fetched.requirements
