"""Build steps and Debian packages, built for real: each build here costs a minute or more.

* compress-app: django-compressor with COMPRESS_OFFLINE, a French catalogue, a build
  command that sees build-env, LOGGING that sends django.request nowhere, and a view that
  raises. Served on kitbuild/mysql, its pages answer 200 and a 500 leaves a traceback.
* syspkg-app: psycopg2 compiled against libpq-dev (a build package), python-magic loading
  libmagic1 (a runtime package).
* a failing build command, and a Debian package that does not exist: one line, no image.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from builder.engine import DockerGateway
from builder.image import bases
from tests.integration.conftest import PROJECTS, ROOT, BuildWithCli, Built
from tests.integration.test_runtime import get, logs_tail, server

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def compress_image(build_with_cli: BuildWithCli) -> Built:
    """compress-app built once for the module, as a user would: no flags."""
    built = build_with_cli(PROJECTS / "compress-app")
    assert 0 == built.code, built
    return built


def test_compress_app_runs_its_build_steps_with_build_env_only_in_the_build(
    gateway: DockerGateway, compress_image: Built
) -> None:
    """The build's steps ran, and build-env was set for them but is not in the image.

    The build names the production settings, compresses, compiles the catalogue and runs
    the command with build-env set.
    """
    tag = compress_image.tag
    # The file has no final newline: add one, so the output is one whole line.
    mark = gateway.run(tag, ["sh", "-c", "cat build-mark.txt; echo"], network_mode="none")
    catalogue = gateway.run(tag, ["ls", "locale/fr/LC_MESSAGES"], network_mode="none")
    # The build may come from the cache (no step output): look at what compress left.
    offline = gateway.run(tag, ["ls", "staticfiles/CACHE"], network_mode="none")
    environment = gateway.run(
        tag, ["python", "-c", "import os; print(os.environ.get('SHOP_BUILD_MARK'))"]
    )

    assert "--settings shop.settings.production" in compress_image.out
    assert b"manifest.json" in offline
    assert b"from-build-env" == mark.strip()
    assert b"django.mo" in catalogue
    assert b"None" == environment.strip()


def test_compressed_pages_answer_200_and_a_500_leaves_its_traceback(
    gateway: DockerGateway, compress_image: Built, mysql_server_image: str
) -> None:
    """Served: / answers 200, and /boom/'s 500 leaves its traceback in the log.

    On kitbuild/mysql, / answers from the offline manifest, in French; the traceback is
    there though the project's LOGGING drops django.request's errors.
    """
    with (
        server(gateway, mysql_server_image, compress_image.tag) as served,
        served.app(compress_image.tag) as running,
    ):
        status, body = get(running.port, "/")
        failed, _ = get(running.port, "/boom/")
        deadline = time.monotonic() + 10
        while "always fails" not in running.container.logs() and time.monotonic() < deadline:
            time.sleep(0.5)
        log = running.container.logs()

    assert 200 == status, f"{body[:500]!r}\n{logs_tail(running.container)}"
    assert b"Bonjour, client" in body
    assert re.search(rb"/static/CACHE/css/output\.[0-9a-f]+\.css", body)
    assert 500 == failed
    assert "kitbuild: unhandled exception in GET /boom/" in log
    assert "Traceback (most recent call last)" in log
    assert "RuntimeError: kitbuild fixture: this view always fails" in log


def test_build_and_runtime_packages_are_there_when_needed(
    gateway: DockerGateway, build_with_cli: BuildWithCli
) -> None:
    """A build package serves the compile, runtime packages the running image.

    psycopg2 compiles against libpq-dev in the build stage; at run time it loads libpq5 and
    python-magic loads libmagic1, both from the runtime's derived base.
    """
    built = build_with_cli(PROJECTS / "syspkg-app")
    assert 0 == built.code, built

    probe = (
        "import magic, psycopg2; "
        "print(psycopg2.__libpq_version__ > 0, magic.from_buffer(b'%PDF-1.4', mime=True))"
    )
    output = gateway.run(built.tag, ["python", "-c", probe], network_mode="none")
    summary = gateway.summary(built.tag)

    assert b"True application/pdf" == output.strip()
    assert (
        bases.derived_reference("runtime", "bookworm", ["libpq5", "libmagic1"])
        == (summary.labels["org.opencontainers.image.base.name"])
    )
    compiler = gateway.run(built.tag, ["sh", "-c", "command -v gcc || echo none"])
    assert b"none" == compiler.strip()


def test_failing_build_command_is_named_in_one_line_and_tags_nothing(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """A build command that exits 3: one error line naming it, exit 1, no image."""
    project = tmp_path / "mysite"
    shutil.copytree(ROOT / "examples" / "mysite", project)
    built = build_with_cli(project, "--build-command", "echo preparing; exit 3")

    assert 1 == built.code, built
    assert re.fullmatch(
        r"kitbuild: error: build failed at step \d+/\d+, in build step "
        r"build command 'echo preparing; exit 3': exit status 3\n",
        built.err,
    )
    assert not gateway.image_exists(built.tag)


def test_unknown_debian_package_is_one_line_and_tags_nothing(
    gateway: DockerGateway, build_with_cli: BuildWithCli
) -> None:
    """A runtime package bookworm lacks: one line naming it, exit 1, no image at all.

    Neither the app's tag nor a derived base is left behind.
    """
    package = "kitbuild-no-such-package"
    built = build_with_cli(ROOT / "examples" / "mysite", "--runtime-package", package)

    assert 1 == built.code, built
    assert built.err.startswith(f"kitbuild: error: Debian bookworm has no package {package};")
    assert 1 == built.err.count("\n")
    assert not gateway.image_exists(built.tag)
    assert not gateway.image_exists(bases.derived_reference("runtime", "bookworm", [package]))


def test_source_package_without_its_headers_names_the_packages_to_add(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """psycopg2 without libpq-dev fails to compile: the one error line names the flags."""
    project = tmp_path / "syspkg-app"
    shutil.copytree(PROJECTS / "syspkg-app", project)
    (project / "pyproject.toml").unlink()  # no build packages: the compile must fail
    built = build_with_cli(project)

    assert 1 == built.code, built
    assert built.err.startswith("kitbuild: error: build failed at step "), built
    assert "installing the dependencies: psycopg2 needs system headers to compile: " in built.err
    assert "--build-package libpq-dev --runtime-package libpq5" in built.err
    assert 1 == built.err.count("\n")
    assert not gateway.image_exists(built.tag)
