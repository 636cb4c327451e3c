"""Where the code lands in the Dockerfile, and where the creation time comes from (no Docker)."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from builder.errors import KitError
from builder.image.created import image_created, run_git
from builder.image.pipeline import BuildOptions, build_project
from tests.fakes import FakeBases, RecordingPublisher, fake_fetch, fake_resolve

ROOT = Path(__file__).parent.parent
_NOW = datetime.datetime(2026, 12, 3, 17, 0, 0, tzinfo=datetime.UTC)
#: The code's step, in the steps stage (the final stage takes the steps' output).
_CODE = "COPY app/ /app/"


def _render(tmp_path: Path, project: Path, env: dict[str, str]) -> list[str]:
    build_project(
        BuildOptions(project_dir=project),
        sources=FakeBases(),
        publisher=RecordingPublisher(tmp_path / "context"),
        fetch=fake_fetch,
        resolve=fake_resolve,
        say=lambda _line: None,
        workdir=tmp_path,
        env=env,
    )
    text = (tmp_path / "context" / "Dockerfile").read_text()
    # Instructions only: continuation lines joined, comments dropped.
    joined = text.replace("\\\n", " ")
    return [line for line in joined.splitlines() if line and not line.startswith("#")]


def _after_code(instructions: list[str]) -> list[str]:
    start = instructions.index(_CODE)
    return [line.split()[0] for line in instructions[start:]]


def test_created_comes_from_source_date_epoch_first() -> None:
    """SOURCE_DATE_EPOCH wins over git and the clock."""
    created = image_created(
        Path("/nonexistent"), {"SOURCE_DATE_EPOCH": "1700000000"}, git=lambda *_: "1600000000\n"
    )

    assert ("2023-11-14T22:13:20Z", "SOURCE_DATE_EPOCH", True) == (
        created.timestamp,
        created.source,
        created.from_source,
    )


def test_created_comes_from_the_last_commit_touching_the_project() -> None:
    """Without SOURCE_DATE_EPOCH, git's last commit time for the project's directory."""
    asked: list[tuple[list[str], Path]] = []

    def git(argv: Sequence[str], cwd: Path) -> str:
        asked.append((list(argv), cwd))
        return "1600000000\n"

    created = image_created(Path("/proj"), {}, git=git)

    assert ("2020-09-13T12:26:40Z", "git") == (created.timestamp, created.source)
    assert [(["log", "-1", "--format=%ct", "--", "."], Path("/proj"))] == asked


@pytest.mark.parametrize("git_says", [None, "", "fatal: not a git repository"])
def test_created_falls_back_to_the_build_time(git_says: str | None) -> None:
    """No git, not a repository, or no commit yet: the build time, marked as such."""
    created = image_created(Path("/proj"), {}, git=lambda *_: git_says, now=lambda: _NOW)

    assert ("2026-12-03T17:00:00Z", "build time", False) == (
        created.timestamp,
        created.source,
        created.from_source,
    )


def test_bad_source_date_epoch_is_one_clear_error() -> None:
    """A SOURCE_DATE_EPOCH that is not whole seconds is refused, naming the variable."""
    with pytest.raises(KitError, match=r"^SOURCE_DATE_EPOCH='yesterday' is not a whole number"):
        image_created(Path("/proj"), {"SOURCE_DATE_EPOCH": "yesterday"})


def test_git_runner_survives_a_directory_that_is_no_repository(tmp_path: Path) -> None:
    """The real git runner answers None outside a repository (and when git is missing)."""
    assert run_git(["log", "-1", "--format=%ct", "--", "."], tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_runner_reads_a_real_commit_time(tmp_path: Path) -> None:
    """In a fresh repository with one commit, the label is that commit's time."""
    env = {"GIT_AUTHOR_DATE": "@1650000000 +0000", "GIT_COMMITTER_DATE": "@1650000000 +0000"}
    for argv in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                  "commit", "-qm", "one"]):  # fmt: skip
        (tmp_path / "f").write_text("x")
        subprocess.run(["git", *argv], cwd=tmp_path, check=True, env={**os.environ, **env})

    assert "2022-04-15T05:20:00Z" == image_created(tmp_path, {}).timestamp


def test_code_only_change_reruns_copy_and_run(tmp_path: Path) -> None:
    """With a source-fixed creation time, a code change re-runs four steps, no metadata.

    The steps stage's COPY and RUN, then the final stage's two COPYs (the project, and what
    the steps wrote outside it); its USER is metadata. Everything before the code (the
    base stage's workdir, healthcheck, entrypoint and labels) stays cached.
    """
    instructions = _render(tmp_path, ROOT / "examples" / "mysite", {"SOURCE_DATE_EPOCH": "1"})

    assert ["COPY", "RUN", "FROM", "COPY", "COPY", "USER"] == _after_code(instructions)
    assert "FROM base AS steps" == instructions[instructions.index(_CODE) - 1]
    before = "\n".join(instructions[: instructions.index(_CODE)])
    for metadata in ("WORKDIR /app/", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"):
        assert metadata in before
    assert 'org.opencontainers.image.created="1970-01-01T00:00:01Z"' in before


def test_build_time_label_is_the_last_step(tmp_path: Path) -> None:
    """A build-time creation label comes last, so it never invalidates a cached layer."""
    project = tmp_path / "mysite"
    shutil.copytree(ROOT / "examples" / "mysite", project)  # outside any git repository

    instructions = _render(tmp_path, project, {})

    assert ["COPY", "RUN", "FROM", "COPY", "COPY", "USER", "LABEL"] == _after_code(instructions)
    assert instructions[-1].startswith("LABEL org.opencontainers.image.created=")
    assert 1 == sum("org.opencontainers.image.created" in line for line in instructions)
