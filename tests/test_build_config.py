"""``[tool.kitbuild]`` and the build flags that say the same: parsing, layering, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from builder import cli
from builder.errors import BaseImageError, BuildConfigError
from builder.image.config import KitConfig, parse_tool_table, read_config
from builder.image.pipeline import choose_suite
from builder.image.project import inspect_project

EXAMPLE = Path(__file__).parent.parent / "examples" / "mysite"
PROJECTS = Path(__file__).parent / "fixtures" / "projects"

FULL_TABLE = """
[project]
name = "site"

[tool.kitbuild]
settings = "site.settings.production"
requirements = "requirements/prod.txt"
groups = ["mysql"]
build-commands = ["python manage.py compress"]
build-packages = ["libpq-dev"]
runtime-packages = ["libpq5"]
build-env = { DEBUG = "0" }
collectstatic = false
"""


def test_every_key_is_read() -> None:
    """Each documented key lands in its field, with build-env kept as name/value pairs."""
    config = parse_tool_table(FULL_TABLE, "pyproject.toml")

    assert config == KitConfig(
        settings="site.settings.production",
        requirements="requirements/prod.txt",
        groups=("mysql",),
        build_commands=("python manage.py compress",),
        build_packages=("libpq-dev",),
        runtime_packages=("libpq5",),
        build_env=(("DEBUG", "0"),),
        collectstatic=False,
    )


def test_no_table_is_an_empty_config() -> None:
    """A pyproject.toml without [tool.kitbuild] asks for nothing."""
    assert parse_tool_table('[project]\nname = "x"\n', "pyproject.toml") == KitConfig()


def test_flags_win_and_lists_add_up() -> None:
    """A flag's scalar replaces the table's; its lists are added after the table's, once."""
    table = parse_tool_table(FULL_TABLE, "pyproject.toml")
    flags = KitConfig(
        settings="site.settings.other",
        build_packages=("libpq-dev", "gettext"),
        build_env=(("DEBUG", "1"), ("X", "y")),
        collectstatic=True,
    )

    merged = table.overridden_by(flags)

    assert merged.settings == "site.settings.other"
    assert merged.requirements == "requirements/prod.txt"
    assert merged.build_packages == ("libpq-dev", "gettext")
    assert dict(merged.build_env) == {"DEBUG": "1", "X": "y"}
    assert merged.collectstatic is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("setings = 'a.b'", "unknown key 'setings'"),
        ("build-packages = 'libpq-dev'", "build-packages must be a list of strings"),
        ("build-packages = ['LibPQ dev']", "'LibPQ dev' is not a Debian package name"),
        ("settings = 'not a module'", "is not a dotted module name"),
        ("collectstatic = 'yes'", "collectstatic must be true or false"),
        ("build-env = { DEBUG = 0 }", "build-env must be a table of strings"),
        ("build-commands = ['  ']", "a build command is empty"),
    ],
)
def test_bad_table_is_named(body: str, message: str) -> None:
    """Each kind of bad value gets a BuildConfigError naming the file, the table and the value."""
    with pytest.raises(BuildConfigError) as raised:
        parse_tool_table(f"[tool.kitbuild]\n{body}\n", "pyproject.toml")

    assert message in str(raised.value)
    assert str(raised.value).startswith("pyproject.toml [tool.kitbuild]")


def test_table_beside_manage_py_is_found(tmp_path: Path) -> None:
    """A project whose manage.py is in a subdirectory may keep its table there."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "pyproject.toml").write_text(
        '[tool.kitbuild]\nruntime-packages = ["libmagic1"]\n', encoding="utf-8"
    )

    config = read_config(tmp_path, tmp_path / "backend")

    assert config.runtime_packages == ("libmagic1",)


def test_unknown_key_fails_the_build_in_one_line(tmp_path: Path) -> None:
    """`kitbuild build` on a project with a misspelt key exits 1 with one line, no traceback."""
    project = tmp_path / "site"
    project.mkdir()
    for path in EXAMPLE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = project / path.relative_to(EXAMPLE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (project / "pyproject.toml").write_text(
        "[tool.kitbuild]\nbuild-package = ['gettext']\n", encoding="utf-8"
    )
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["build", str(project), "--render-only", str(tmp_path / "ctx")],
        env={},
        stdout=out,
        stderr=err,
    )

    assert code == 1
    assert err.getvalue().count("\n") == 1
    assert "unknown key 'build-package'" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert not (tmp_path / "ctx").exists()


def test_bad_build_env_flag_fails_in_one_line(tmp_path: Path) -> None:
    """A --build-env without '=' is refused before anything is read or written."""
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["build", str(EXAMPLE), "--build-env", "DEBUG", "--render-only", str(tmp_path / "c")],
        env={},
        stdout=out,
        stderr=err,
    )

    assert code == 1
    assert "--build-env 'DEBUG': write it as NAME=VALUE" in err.getvalue()
    assert not (tmp_path / "c").exists()


def test_suite_asked_for_is_used_when_it_runs_the_project() -> None:
    """--suite trixie gives a Django 5 project Python 3.13; without it, bookworm is chosen."""
    project = inspect_project(EXAMPLE)

    assert choose_suite(project).name == "bookworm"
    assert choose_suite(project, "trixie").name == "trixie"


@pytest.mark.parametrize(
    ("project", "suite", "message"),
    [
        (EXAMPLE, "buster", "suite 'buster': kitbuild's base suites are bookworm, trixie"),
        (PROJECTS / "django6-app", "bookworm", "cannot run Django"),
    ],
)
def test_suite_that_cannot_serve_is_refused(project: Path, suite: str, message: str) -> None:
    """An unknown suite, or one whose Python is too old for the project's Django, is named."""
    with pytest.raises(BaseImageError) as raised:
        choose_suite(inspect_project(project), suite)

    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("secrets.toml", "--build-file 'secrets.toml': write it as SRC:DEST"),
        ("secrets.toml:", "--build-file 'secrets.toml:': write it as SRC:DEST"),
        ("a.toml:../outside.toml", "DEST must not contain '..'"),
        ("/nonexistent/secrets.toml:config/s.toml", "/nonexistent/secrets.toml does not exist"),
    ],
)
def test_bad_build_file_fails_in_one_line(tmp_path: Path, flag: str, message: str) -> None:
    """A --build-file not SRC:DEST, or whose source is missing: one line, nothing written."""
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        ["build", str(EXAMPLE), "--build-file", flag, "--render-only", str(tmp_path / "c")],
        env={},
        stdout=out,
        stderr=err,
    )

    assert code == 1
    assert message in err.getvalue()
    assert err.getvalue().count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_build_files_from_the_table_are_the_projects_and_flags_replace_them() -> None:
    """[tool.kitbuild] build-files are SRC:DEST strings; a flag for the same DEST wins."""
    table = parse_tool_table(
        '[tool.kitbuild]\nbuild-files = ["ci/secrets.toml:config/secrets.toml"]\n', "p"
    )
    flags = KitConfig(build_files=(("/home/me/real.toml", "config/secrets.toml"),))

    assert (("ci/secrets.toml", "config/secrets.toml"),) == table.build_files
    assert (("/home/me/real.toml", "config/secrets.toml"),) == table.overridden_by(
        flags
    ).build_files
