"""Project inspection: reading a Django project's files without importing its code."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import ProjectError
from builder.image import project
from builder.image.project import find_project_dirs, inspect_project

PROJECTS = Path(__file__).parent / "fixtures" / "projects"
EXAMPLE = Path(__file__).parent.parent / "examples" / "mysite"


@pytest.mark.parametrize(
    ("name", "app_dir", "settings", "wsgi", "static_root", "source", "driver"),
    [
        ("pyproject-app", ".", "shop.settings", "shop.wsgi.application", False,
         "pyproject.toml", "mysqlclient"),
        ("split-settings", ".", "config.settings.production", "config.wsgi.application", True,
         "requirements.txt", "mysqlclient"),
        ("dburl-app", ".", "site_dburl.settings", "site_dburl.wsgi.application", False,
         "requirements.txt", "pymysql"),
        ("whitenoise-app", ".", "blog.settings", "blog.wsgi.application", True,
         "requirements.txt", "mysqlclient"),
        ("postgres-app", ".", "notes.settings", "notes.wsgi.application", False,
         "requirements.txt", None),
        ("django6-app", "src", "web.settings", "web.wsgi.application", False,
         "requirements.txt", "mysqlclient"),
    ],
)  # fmt: skip
def test_fixture_projects_are_understood(
    name: str,
    app_dir: str,
    settings: str,
    wsgi: str,
    static_root: bool,
    source: str,
    driver: str | None,
) -> None:
    """Each project shape yields its manage.py dir, settings, WSGI app, statics and driver."""
    found = inspect_project(PROJECTS / name)

    assert (app_dir, settings, wsgi, static_root, source, driver) == (
        found.app_dir,
        found.settings_module,
        found.wsgi_application,
        found.static_root,
        found.requirements_source,
        found.mysql_driver,
    )
    assert name == found.name


def test_src_layout_puts_src_on_the_python_path() -> None:
    """Settings under src/ (manage.py adds src/ to sys.path itself): code_dir is "src"."""
    found = inspect_project(PROJECTS / "src-layout-app")

    assert (".", "src", "src", "portal.settings", "portal.wsgi.application", True) == (
        found.app_dir,
        found.code_dir,
        found.code_path,
        found.settings_module,
        found.wsgi_application,
        found.static_root,
    )


def test_settings_beside_manage_py_need_no_extra_path() -> None:
    """The usual layout (and manage.py itself in src/) keeps code_dir ".": nothing is added."""
    assert (".", "src") == (
        inspect_project(EXAMPLE).code_dir,
        inspect_project(PROJECTS / "django6-app").code_path,
    )


def test_example_mysite() -> None:
    """The example project is the seed's mysite, with collected statics."""
    found = inspect_project(EXAMPLE)

    assert ("mysite.settings", "mysite.wsgi.application", True) == (
        found.settings_module,
        found.wsgi_application,
        found.static_root,
    )
    assert "Django>=5.2,<5.3" == found.django_requirement


def test_requirement_includes_are_followed() -> None:
    """-r includes are expanded, nested, relative to the including file."""
    found = inspect_project(PROJECTS / "split-settings")

    assert ("Django>=5.2,<5.3", "mysqlclient>=2.2,<3") == found.requirements


def test_settings_flag_overrides_manage_py() -> None:
    """--settings picks another settings module than manage.py's default."""
    found = inspect_project(PROJECTS / "split-settings", settings="config.settings.base")

    assert "config.settings.base" == found.settings_module
    assert not found.static_root


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-no-manage", "is not a Django project: no manage.py"),
        ("bad-missing-settings", "settings module 'ghost.settings' not found"),
        ("bad-requirement-syntax", "requirements.txt:2: cannot parse requirement"),
        ("bad-no-django", "requirements.txt does not list Django"),
    ],
)
def test_bad_projects_give_one_line(name: str, message: str) -> None:
    """Each broken project gives one line saying what is wrong."""
    with pytest.raises(ProjectError) as error:
        inspect_project(PROJECTS / name)

    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_directory(tmp_path: Path) -> None:
    """A directory that does not exist is named."""
    with pytest.raises(ProjectError, match="no such directory"):
        inspect_project(tmp_path / "nope")


def test_a_file_is_not_a_project(tmp_path: Path) -> None:
    """A file given as the project says so."""
    (tmp_path / "manage.py").write_text("")
    with pytest.raises(ProjectError, match="not a directory"):
        inspect_project(tmp_path / "manage.py")


def test_several_projects_are_ambiguous(tmp_path: Path) -> None:
    """Two manage.py files below the directory: the user must pick one."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manage.py").write_text("")
    with pytest.raises(ProjectError, match="several Django projects"):
        inspect_project(tmp_path)


def test_unreadable_requirements_file(tmp_path: Path) -> None:
    """A requirements.txt that is not text names the file."""
    _minimal_project(tmp_path)
    (tmp_path / "requirements.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ProjectError, match=r"cannot read .*requirements.txt: not UTF-8 text"):
        inspect_project(tmp_path)


def test_missing_include(tmp_path: Path) -> None:
    """An -r include that does not exist is named with the file that includes it."""
    _minimal_project(tmp_path)
    (tmp_path / "requirements.txt").write_text("-r prod.txt\n")
    with pytest.raises(ProjectError, match=r"requirements\.txt includes prod\.txt, which does not"):
        inspect_project(tmp_path)


def test_editable_requirement_is_refused(tmp_path: Path) -> None:
    """`-e .` cannot be resolved into a wheelhouse: refused with the line number."""
    _minimal_project(tmp_path)
    (tmp_path / "requirements.txt").write_text("Django>=5.2\n-e .\n")
    with pytest.raises(ProjectError, match=r"requirements\.txt:2: editable requirement"):
        inspect_project(tmp_path)


def test_no_requirements_at_all(tmp_path: Path) -> None:
    """A project without requirements is told to list at least Django."""
    _minimal_project(tmp_path)
    with pytest.raises(ProjectError, match=r"no requirements\.txt"):
        inspect_project(tmp_path)


def test_settings_syntax_error(tmp_path: Path) -> None:
    """A settings file that does not parse is named with its line."""
    _minimal_project(tmp_path)
    (tmp_path / "app" / "settings.py").write_text("X = (\n")
    (tmp_path / "requirements.txt").write_text("Django\n")
    with pytest.raises(ProjectError, match=r"settings.py:1: syntax error"):
        inspect_project(tmp_path)


def test_wsgi_falls_back_to_the_package_wsgi_module(tmp_path: Path) -> None:
    """Without WSGI_APPLICATION, <package>/wsgi.py's application is used."""
    _minimal_project(tmp_path)
    (tmp_path / "app" / "settings.py").write_text("DEBUG = False\n")
    (tmp_path / "app" / "wsgi.py").write_text("application = None\n")
    (tmp_path / "requirements.txt").write_text("Django\n")

    assert "app.wsgi.application" == inspect_project(tmp_path).wsgi_application


def _minimal_project(root: Path) -> None:
    (root / "manage.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'app.settings')\n"
    )
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "settings.py").write_text("WSGI_APPLICATION = 'app.wsgi.application'\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.b')", "a.b"),
        ("os.environ.setdefault(\n \"DJANGO_SETTINGS_MODULE\", \"x.s.dev\"\n)", "x.s.dev"),
        ("print('hello')", None),
    ],
)  # fmt: skip
def test_parse_settings_module(text: str, expected: str | None) -> None:
    """manage.py's setdefault call gives the settings module, across lines and quotes."""
    assert expected == project.parse_settings_module(text)


def test_parse_settings_source_resolves_relative_star_imports() -> None:
    """`from .base import *` in config.settings.prod means config.settings.base."""
    found = project.parse_settings_source(
        "from .base import *\nfrom ..common import *\nSTATIC_ROOT = None\n", "config.settings.prod"
    )

    assert ("config.settings.base", "config.common") == found.star_imports
    assert not found.static_root


def test_parse_requirements_handles_options_comments_and_continuations() -> None:
    """Hashes stay with their line, index options are reported, continuations are joined."""
    text = (
        "--index-url http://mirror.invalid/simple\n"
        "# a comment\n"
        "Django>=5.2 \\\n    --hash=sha256:abc\n"
        "gunicorn==23.0.0  # pinned\n"
        "--find-links /somewhere\n"
        "-c constraints.txt\n"
        "-r other.txt\n"
    )
    items = list(project.parse_requirements(text, "requirements.txt"))

    assert [
        project.RequirementLine(index="--index-url http://mirror.invalid/simple", number=1),
        project.RequirementLine(requirement="Django>=5.2", hashes=("sha256:abc",), number=3),
        project.RequirementLine(requirement="gunicorn==23.0.0", number=4),
        project.RequirementLine(index="--find-links /somewhere", number=5),
        project.RequirementLine(include="other.txt", number=7),
    ] == items


def test_a_root_manage_py_without_its_settings_defers_to_the_nested_one(tmp_path: Path) -> None:
    """A root manage.py whose settings are not beside it defers to a nested one whose are.

    The root one is a platform's wrapper (tabbycat's), the nested one the project's.
    """
    (tmp_path / "manage.py").write_text(_MANAGE.format(module="settings"))
    app = tmp_path / "tabby"
    (app / "settings").mkdir(parents=True)
    (app / "settings" / "__init__.py").write_text("")
    (app / "manage.py").write_text(_MANAGE.format(module="settings"))

    assert (tmp_path, app) == find_project_dirs(tmp_path)


def test_a_root_manage_py_with_its_settings_is_kept(tmp_path: Path) -> None:
    """The root manage.py stays the project's when its settings are beside it."""
    (tmp_path / "manage.py").write_text(_MANAGE.format(module="site_settings"))
    (tmp_path / "site_settings.py").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "manage.py").write_text(_MANAGE.format(module="x"))
    (tmp_path / "other" / "x.py").write_text("")

    assert (tmp_path, tmp_path) == find_project_dirs(tmp_path)


_MANAGE = 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "{module}")\n'


def test_a_project_without_a_wsgi_module_is_served_by_djangos_handler(tmp_path: Path) -> None:
    """No WSGI_APPLICATION and no wsgi.py (an ASGI-only project): "" (Django's own)."""
    (tmp_path / "manage.py").write_text(_MANAGE.format(module="settings"))
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "__init__.py").write_text("DEBUG = False\n")
    (tmp_path / "requirements.txt").write_text("Django>=5.2,<5.3\n")

    assert "" == inspect_project(tmp_path).wsgi_application
