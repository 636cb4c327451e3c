"""Six public Django projects, built unmodified, migrated on kitbuild/mysql, their pages checked.

The archives and CORPUS.md live in shared/corpus (KIT_CORPUS_DIR overrides); what each
project needs (kitbuild flags, build environment, container environment, the pages and
their statuses) is data, in tests/corpus/projects.toml. The first test builds every
project once (the builds are memoised for the module), measuring the build's wall time
and the image's size; the second starts a fresh kitbuild/mysql per project, runs the
image's ``migrate``, starts the app and requests every listed page. The measurements are
printed at the end of the run (and written to KIT_CORPUS_RESULTS as JSON when it is set;
KIT_CORPUS_LOGS names a folder for each build's whole output).
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import os
import secrets
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.errors import VerifyError
from builder.verify.run import new_credentials
from builder.verify.stack import VerifyStack
from tests.corpus.corpus import (
    CorpusProject,
    Page,
    Result,
    extract,
    find_corpus,
    load_projects,
    matches,
)
from tests.corpus.corpus import rsa_private_key as make_key
from tests.integration.conftest import TEST_REPOSITORY

pytestmark = [pytest.mark.docker, pytest.mark.corpus]

PROJECTS = load_projects()
MAX_CONNECTIONS = 60


@dataclasses.dataclass
class Build:
    """One project's build: the CLI's exit code and output, and the image's tag."""

    tag: str
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The CLI's last error line (kitbuild prints exactly one)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit {self.code}, no error line"


def _params(stage: str) -> list[object]:
    """One parameter per project; a project known to fail at this stage is a strict xfail.

    ``known_build`` covers both tests (nothing can be served without an image); ``known``
    covers the pages only.
    """
    params: list[object] = []
    for project in PROJECTS:
        reason = project.known_build if stage == "build" else project.known_build or project.known
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(project, id=project.name, marks=marks))
    return params


@pytest.fixture(scope="module")
def corpus() -> Path:
    """The folder holding the archives; a run without it fails (it is the suite's input)."""
    found = find_corpus()
    if found is None:
        pytest.fail("no shared/corpus above the checkout: set KIT_CORPUS_DIR to the folder")
    return found


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    """The placeholders the data file may use (the database URL is per test)."""
    return {
        "secret_key": secrets.token_urlsafe(48),
        "rsa_key": make_key(),
        "rsa_key_2": make_key(),
    }


@pytest.fixture(scope="module")
def builds(
    corpus: Path,
    gateway: DockerGateway,
    values: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    corpus_results: dict[str, Result],
) -> Iterator[Callable[[CorpusProject], Build]]:
    """Memoised builds: each project is extracted and built once for the module."""
    done: dict[str, Build] = {}

    def build(project: CorpusProject) -> Build:
        if project.name in done:
            return done[project.name]
        result = corpus_results.setdefault(project.name, Result(project.name, project.declares))
        source = extract(corpus / f"{project.name}.tar.gz", tmp_path_factory.mktemp("corpus"))
        tag = f"{TEST_REPOSITORY}/corpus-{project.name}:latest"
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        try:
            code = cli.main(
                ["build", str(source), "--tag", tag, *project.build_arguments(values)],
                stdout=out,
                stderr=err,
            )
        except Exception:  # a crash is remembered too: the next test must not rebuild
            code = -1
            err.write(traceback.format_exc())
        done[project.name] = Build(tag, code, out.getvalue(), err.getvalue())
        if os.environ.get("KIT_CORPUS_LOGS"):  # the whole output, as the build goes
            log = Path(os.environ["KIT_CORPUS_LOGS"]) / f"{project.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(out.getvalue() + err.getvalue())
        result.build_seconds = time.monotonic() - started
        if code == 0:
            result.size_bytes = gateway.summary(tag).size
        else:
            result.build_error = done[project.name].error_line().removeprefix("kitbuild: error: ")
        return done[project.name]

    yield build
    for made in done.values():
        gateway.remove_image(made.tag)


def get(port: int, page: Page, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """GET a page without following redirects: the status, Location and the body's start."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", page.path, headers={"Connection": "close", **headers})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()[:300]
    finally:
        connection.close()


@pytest.mark.parametrize("project", _params("build"))
def test_builds_unmodified(
    project: CorpusProject, builds: Callable[[CorpusProject], Build]
) -> None:
    """`kitbuild build` with the data file's flags and build environment exits 0."""
    built: Build = builds(project)

    assert 0 == built.code, f"{built.error_line()}\n...{built.out[-3000:]}"


def first_traceback(logs: str, limit: int = 6000) -> str:
    """The logs from their first traceback on (the error, not a settings dump after it)."""
    start = logs.find("Traceback (most recent call last)")
    return logs[start : start + limit] if start >= 0 else logs[-limit:]


@pytest.mark.parametrize("project", _params("pages"))
def test_pages_answer_as_listed(
    project: CorpusProject,
    builds: Callable[[CorpusProject], Build],
    gateway: DockerGateway,
    mysql_server_image: str,
    values: dict[str, str],
    corpus_results: dict[str, Result],
) -> None:
    """Migrated by the image's ``migrate`` on kitbuild/mysql, every listed page answers as listed.

    A fresh server per project, so no project's tables meet another's.
    """
    built: Build = builds(project)
    if built.code != 0:
        pytest.fail(f"not built: {built.error_line()}")
    result = corpus_results[project.name]
    credentials = new_credentials()
    database_url = (
        f"mysql://{credentials.user}:{credentials.password}@db:3306/{credentials.database}"
    )
    environment = {
        "DATABASE_URL": database_url,
        "DATABASE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "SECRET_KEY": values["secret_key"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **project.environment({**values, "database_url": database_url}),
    }
    stack = VerifyStack(gateway, f"corpus-{project.name}-{secrets.token_hex(3)}")
    answers: list[str] = []
    try:
        stack.start_database(mysql_server_image, MAX_CONNECTIONS, credentials)
        try:
            stack.run_migrate(built.tag, environment, timeout=600)
            app = stack.start_app(built.tag, environment, cpus=1.0, timeout=120)
        except VerifyError as error:
            result.failures.append(str(error))
            raise
        result.pages_total = len(project.pages)
        for page in project.pages:
            status, location, body = get(app.port, page, project.headers)
            if matches(page, status, location):
                result.pages_ok += 1
            else:
                shown = f" -> {location}" if location else ""
                answers.append(f"{page.path} {status}{shown}, listed {page.status}: {body!r}")
                result.failures.append(f"{page.path} {status} (listed {page.status})")
        logs = first_traceback(app.container.logs())
    finally:
        stack.close()

    assert [] == answers, logs
