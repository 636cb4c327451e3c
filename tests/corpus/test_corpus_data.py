"""The corpus suite's data file and pure helpers, checked without Docker."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.corpus.corpus import (
    CorpusProject,
    Page,
    Result,
    extract,
    fill,
    find_corpus,
    load_projects,
    matches,
    table,
)

VALUES = {
    "database_url": "mysql://u:p@db:3306/n",
    "secret_key": "s",
    "rsa_key": "K1",
    "rsa_key_2": "K2",
}


def test_data_file_names_six_projects_with_pages() -> None:
    """projects.toml lists the six corpus archives, each with pages to check."""
    projects = load_projects()

    assert {
        "ephios",
        "nucleus",
        "pennlabs-platform",
        "djangoblog",
        "civictechjobs",
        "babybuddy",
    } == {p.name for p in projects}
    assert all(p.pages and p.declares for p in projects)


@pytest.mark.parametrize("project", load_projects(), ids=lambda p: p.name)
def test_every_placeholder_in_the_data_file_is_known(project: CorpusProject) -> None:
    """Flags, build env and env only name placeholders the suite fills in."""
    arguments = project.build_arguments(VALUES)
    environment = project.environment(VALUES)

    assert not any("$" in text for text in [*arguments, *environment.values()])


def test_build_env_becomes_one_flag_per_variable() -> None:
    """build_env entries follow the flags as --build-env NAME=VALUE, placeholders filled."""
    project = CorpusProject(
        "p", "d", ("--settings", "a.b"), {"KEY": "$rsa_key"}, {}, {}, (Page("/", 200),), None, None
    )

    assert ["--settings", "a.b", "--build-env", "KEY=K1"] == project.build_arguments(VALUES)


def test_unknown_placeholder_and_unknown_key_are_errors(tmp_path: Path) -> None:
    """A typo in the data file fails loudly instead of reaching a container."""
    with pytest.raises(KeyError):
        fill("$databse_url", VALUES)
    data = tmp_path / "projects.toml"
    data.write_text('[x]\ndeclares = "d"\npages = []\nflag = []\n')
    with pytest.raises(ValueError, match=r"\[x\] has unknown keys \['flag'\]"):
        load_projects(data)


@pytest.mark.parametrize(
    ("page", "status", "location", "expected"),
    [
        (Page("/", 200), 200, "", True),
        (Page("/", 200), 500, "", False),
        (Page("/", 302, "/login/?next=/"), 302, "/login/?next=/", True),
        (Page("/", 302, "/login/?next=/"), 302, "http://127.0.0.1:5/login/?next=%2F", True),
        (Page("/", 302, "/login/?next=/"), 302, "https://127.0.0.1/", False),
        (Page("/", 302, "/login/?next=/"), 301, "/login/?next=/", False),
    ],
)  # fmt: skip
def test_a_page_matches_its_status_and_redirect(
    page: Page, status: int, location: str, expected: bool
) -> None:
    """The status must be the listed one; a listed redirect's path and query must match."""
    assert expected == matches(page, status, location)


def test_extract_returns_the_archive_top_folder(tmp_path: Path) -> None:
    """A git-archive tarball unpacks to its one top folder."""
    archive = tmp_path / "p.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("p/manage.py")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"x=1"))
    (tmp_path / "out").mkdir()

    assert "x=1" == (extract(archive, tmp_path / "out") / "manage.py").read_text()


def test_corpus_folder_from_the_environment_or_a_parent(tmp_path: Path) -> None:
    """KIT_CORPUS_DIR wins; otherwise the nearest shared/corpus with a CORPUS.md above."""
    (tmp_path / "shared" / "corpus").mkdir(parents=True)
    (tmp_path / "shared" / "corpus" / "CORPUS.md").write_text("")
    checkout = tmp_path / "clone" / "tests"
    checkout.mkdir(parents=True)

    assert tmp_path / "shared" / "corpus" == find_corpus(checkout, {})
    assert Path("/x") == find_corpus(checkout, {"KIT_CORPUS_DIR": "/x"})
    assert find_corpus(Path("/"), {}) is None


def test_table_rows_say_time_size_and_result() -> None:
    """The corpus table (docs/building.md): seconds, megabytes, verdict; a dash if unmeasured."""
    works = Result("a", "`uv.lock`", 61.2, 250_000_000, pages_ok=3, pages_total=3)
    broken = Result("b", "`Pipfile`", 12.0, build_error="no wheel of x")

    lines = table([works, broken]).splitlines()

    assert "| a | `uv.lock` | 61 s | 250 MB | works: 3/3 pages as listed |" == lines[2]
    assert "| b | `Pipfile` | 12 s | — | build fails: no wheel of x |" == lines[3]
