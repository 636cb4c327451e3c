"""Fixtures for tests that need the Docker engine: they build and run real images.

Every container a test starts goes through the same gateway and helpers as the product
(:class:`~builder.engine.DockerGateway`, :class:`~builder.verify.stack.VerifyStack`).
"""

from __future__ import annotations

import io
import itertools
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.image import bases
from builder.image.service_images import MYSQL

ROOT = Path(__file__).parent.parent.parent
PROJECTS = ROOT / "tests" / "fixtures" / "projects"
#: Images this session builds are tagged here; the suffix keeps parallel sessions apart.
TEST_REPOSITORY = f"kitbuild-test-{secrets.token_hex(3)}"
_counter = itertools.count()


@pytest.fixture(scope="session")
def gateway() -> Iterator[DockerGateway]:
    """The real engine; a test that needs it fails (never skips) when it is down."""
    connection = DockerGateway.connect()
    yield connection
    connection.close()


class Built:
    """The outcome of one `kitbuild build` run through the CLI."""

    def __init__(self, tag: str, code: int, out: str, err: str) -> None:
        """Keep the exit code and everything the CLI printed."""
        self.tag, self.code, self.out, self.err = tag, code, out, err

    def __repr__(self) -> str:
        """Show the tail of the output when an assertion about a build fails."""
        return f"Built({self.tag}, code={self.code}, err={self.err!r}, out=...{self.out[-1500:]})"


class BuildWithCli(Protocol):
    """`kitbuild build PROJECT [EXTRA...] --tag TAG` through the CLI, tag removed after the run."""

    def __call__(self, project: Path, *extra: str, tag: str | None = None) -> Built:
        """Build ``project`` (tagged ``tag``, else a fresh test tag) and say how it went."""
        ...


@pytest.fixture(scope="session")
def build_with_cli(gateway: DockerGateway) -> Iterator[BuildWithCli]:
    """Build a project with `kitbuild build`, tagging kitbuild-test-X/NAME:N; remove all after."""
    tags: list[str] = []

    def build(project: Path, *extra: str, tag: str | None = None) -> Built:
        tag = tag or f"{TEST_REPOSITORY}/{project.name}:{next(_counter)}"
        tags.append(tag)
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(["build", str(project), "--tag", tag, *extra], stdout=out, stderr=err)
        return Built(tag, code, out.getvalue(), err.getvalue())

    yield build
    for tag in tags:
        gateway.remove_image(tag)


@pytest.fixture(scope="session")
def mysite_image(build_with_cli: BuildWithCli) -> Built:
    """examples/mysite built once for the session, exactly as the README does it."""
    built = build_with_cli(ROOT / "examples" / "mysite")
    assert 0 == built.code, built
    return built


@pytest.fixture(scope="session")
def trixie_build_base(gateway: DockerGateway) -> str:
    """kitbuild/python-build:trixie, made if missing.

    A test that names it must not rely on another (one building with ``--suite trixie``)
    having run before it: in a parallel run, or on a fresh engine, none may have.
    """
    return bases.ensure_suite("trixie", gateway, say=lambda _line: None).build


@pytest.fixture(scope="session")
def mysql_server_image(gateway: DockerGateway) -> str:
    """kitbuild/mysql:latest, made if missing or stale (it is never pulled)."""
    return MYSQL.ensure(gateway)
