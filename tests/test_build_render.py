"""Rendering a build context (no Docker): Dockerfile, ignores, requirements, runtime files."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from importlib import metadata
from pathlib import Path

import pytest

from builder.errors import KitError, TagError
from builder.image import context as render
from builder.image import pipeline as build
from builder.image.locks import Pin
from builder.image.pipeline import BuildOptions, BuildResult, build_project
from builder.image.wheelhouse import Target
from tests.fakes import FakeBases, RecordingPublisher, fake_fetch, fake_resolve

ROOT = Path(__file__).parent.parent
PROJECTS = Path(__file__).parent / "fixtures" / "projects"


def render_context(
    tmp_path: Path, project: Path, *, base_image: str | None = None
) -> tuple[Path, tuple[BuildResult, FakeBases]]:
    sources = FakeBases()
    result = build_project(
        BuildOptions(project_dir=project, base_image=base_image),
        sources=sources,
        publisher=RecordingPublisher(tmp_path / "context"),
        fetch=fake_fetch,
        resolve=fake_resolve,
        say=lambda _line: None,
        workdir=tmp_path,
    )
    return tmp_path / "context", (result, sources)


def project_resolution() -> tuple[list[str], Target, list[Pin]]:
    """The latest resolution of the project's dependencies (the build tools' comes after it)."""
    tools = [build.INSTALLER_REQUIREMENT, build.SBOM_TOOL_REQUIREMENT]
    return next(c for c in reversed(fake_resolve.calls) if c[0] != tools)


def build_plan(dockerfile: str) -> dict[str, object]:
    """The JSON plan the Dockerfile hands to kitbuild_runtime.buildsteps, as the shell reads it."""
    line = next(line for line in dockerfile.splitlines() if "kitbuild_runtime.buildsteps" in line)
    words = shlex.split(line.rstrip("\\"))
    plan = json.loads(words[words.index("kitbuild_runtime.buildsteps") + 1])
    assert isinstance(plan, dict)
    return plan


def test_example_context_has_every_part(tmp_path: Path) -> None:
    """The context holds the Dockerfile, .dockerignore, project, requirements and runtime."""
    context, _ = render_context(tmp_path, ROOT / "examples" / "mysite")

    for part in (
        "Dockerfile",
        ".dockerignore",
        "app/manage.py",
        "kitbuild/requirements.txt",
        "kitbuild/wheels/django-5.2.19-py3-none-any.whl",
        "kitbuild/runtime/kitbuild_runtime/entrypoint.py",
        "kitbuild/runtime/kitbuild_runtime/capacity.py",
        "kitbuild/runtime/kitbuild_runtime/django_settings.py",
    ):
        assert (context / part).is_file(), part


def test_runtime_package_is_copied_as_it_is(tmp_path: Path) -> None:
    """The image plans with exactly the package `kitbuild plan` uses: every module, unchanged."""
    context, _ = render_context(tmp_path, ROOT / "examples" / "mysite")
    copied = context / "kitbuild" / "runtime" / "kitbuild_runtime"
    source = ROOT / "kitbuild_runtime"

    assert sorted(p.name for p in source.glob("*.py")) == sorted(
        p.name for p in copied.glob("*.py")
    )
    for module in source.glob("*.py"):
        assert module.read_text() == (copied / module.name).read_text(), module.name


def test_dockerfile_shape(tmp_path: Path) -> None:
    """Multi-stage, venv, fixed non-root user, exec-form entrypoint, healthcheck, labels."""
    context, _ = render_context(tmp_path, ROOT / "examples" / "mysite")
    dockerfile = (context / "Dockerfile").read_text()

    assert "FROM kitbuild/python-build:bookworm AS build" in dockerfile
    assert "FROM kitbuild/python:bookworm AS base" in dockerfile
    assert "--no-index" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert 'ENTRYPOINT ["python", "-m", "kitbuild_runtime"]' in dockerfile
    assert "HEALTHCHECK" in dockerfile
    assert build_plan(dockerfile)["collectstatic"] is True
    assert 'io.kitbuild.django-version="5.2.19"' in dockerfile
    assert dockerfile.endswith("\n")


def test_dependencies_are_installed_before_the_code_is_copied(tmp_path: Path) -> None:
    """Layer order: wheels and venv first, app code after, so code changes reuse them."""
    context, _ = render_context(tmp_path, ROOT / "examples" / "mysite")
    dockerfile = (context / "Dockerfile").read_text()

    code = dockerfile.index("COPY app/ /app/")
    assert dockerfile.index("COPY kitbuild/ /kitbuild/") < code
    assert dockerfile.index("python3 -m venv") < code


def test_no_collectstatic_without_static_root(tmp_path: Path) -> None:
    """A project without STATIC_ROOT gets no collectstatic step."""
    context, _ = render_context(tmp_path, PROJECTS / "pyproject-app")

    assert build_plan((context / "Dockerfile").read_text())["collectstatic"] is False


def test_gunicorn_and_mysql_driver_are_added_when_missing(tmp_path: Path) -> None:
    """A PostgreSQL-only project gets gunicorn and mysqlclient once; every line is hashed."""
    context, _ = render_context(tmp_path, PROJECTS / "postgres-app")
    lines = (context / "kitbuild" / "requirements.txt").read_text().splitlines()

    assert [
        "Django>=5.2,<5.3",
        "psycopg2-binary>=2.9,<3",
        build.GUNICORN_REQUIREMENT,
        build.MYSQL_DRIVER_REQUIREMENT,
        build.PROCESS_TITLE_REQUIREMENT,
    ] == project_resolution()[0]
    assert "--require-hashes" == lines[0]
    assert all(" --hash=sha256:" in line for line in lines[1:])


def test_project_driver_is_kept(tmp_path: Path) -> None:
    """A project on PyMySQL keeps it and gets no second driver."""
    context, _ = render_context(tmp_path, PROJECTS / "dburl-app")
    lines = (context / "kitbuild" / "requirements.txt").read_text().splitlines()

    assert not any(line.startswith("mysqlclient") for line in lines)


def test_src_layout_is_on_the_image_python_path(tmp_path: Path) -> None:
    """A src layout's src/ joins PYTHONPATH (after the runtime); other projects add nothing."""
    src_layout, _ = render_context(tmp_path, PROJECTS / "src-layout-app")
    (tmp_path / "plain").mkdir()
    plain, _ = render_context(tmp_path / "plain", ROOT / "examples" / "mysite")

    assert "PYTHONPATH=/opt/venv/kitbuild:/app/src " in (src_layout / "Dockerfile").read_text()
    assert "PYTHONPATH=/opt/venv/kitbuild " in (plain / "Dockerfile").read_text()


def test_django6_project_gets_the_trixie_base(tmp_path: Path) -> None:
    """Django 6 needs Python >= 3.12: the project is built on trixie and its Python 3.13."""
    context, _ = render_context(tmp_path, PROJECTS / "django6-app")
    dockerfile = (context / "Dockerfile").read_text()

    assert "FROM kitbuild/python:trixie AS base" in dockerfile
    assert "WORKDIR /app/src" in dockerfile
    assert "3.13.5" == fake_fetch.calls[-1][1].python_full


def test_base_image_option_uses_that_image_for_both_stages(tmp_path: Path) -> None:
    """--base-image replaces both stages' images and its Python is probed."""
    context, _ = render_context(
        tmp_path, ROOT / "examples" / "mysite", base_image="python:3.12-slim"
    )
    dockerfile = (context / "Dockerfile").read_text()

    assert "FROM python:3.12-slim AS build" in dockerfile
    assert "FROM python:3.12-slim AS base" in dockerfile
    assert "3.12.3" == fake_fetch.calls[-1][1].python_full


def test_secrets_vcs_and_local_databases_stay_out(tmp_path: Path) -> None:
    """.git, .env*, venvs and local databases never reach the context; .dockerignore says so."""
    project = tmp_path / "proj"
    (project / "app").mkdir(parents=True)
    (project / "manage.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'app.settings')\n"
    )
    (project / "app" / "settings.py").write_text("WSGI_APPLICATION = 'app.wsgi.application'\n")
    (project / "requirements.txt").write_text("Django>=5.2,<5.3\n")
    for junk in (".git/config", ".env", ".env.production", "venv/bin/python", "db.sqlite3",
                 "app/__pycache__/x.pyc", "node_modules/x.js", "private/key.pem"):  # fmt: skip
        (project / junk).parent.mkdir(parents=True, exist_ok=True)
        (project / junk).write_text("x")
    (project / ".dockerignore").write_text("private\n")

    (tmp_path / "out").mkdir()
    context, _ = render_context(tmp_path / "out", project)
    copied = {p.relative_to(context / "app").as_posix() for p in (context / "app").rglob("*")}
    ignore = (context / ".dockerignore").read_text().splitlines()

    assert {"manage.py", "app", "app/settings.py", "requirements.txt"} == copied
    assert {"app/**/.git", "app/**/.env", "app/**/.env.*", "app/private"} <= set(ignore)


def test_labels_carry_no_secret(tmp_path: Path) -> None:
    """Labels hold names and versions only, and are valid JSON strings in the Dockerfile."""
    context, _ = render_context(tmp_path, ROOT / "examples" / "mysite")
    labels = re.findall(r"^\s+([\w.-]+)=(\".*\")", (context / "Dockerfile").read_text(), re.M)

    assert len(labels) >= 8
    for key, value in labels:
        assert not re.search(r"secret|password|token", key + json.loads(value), re.I)


@pytest.mark.parametrize(
    "tag", ["MySite:latest", "my site", "mysite:", "mysite:-x", ":latest", "a" * 300]
)
def test_invalid_tags_are_refused(tag: str) -> None:
    """Tags Docker would refuse are refused up front, with the rule."""
    with pytest.raises(TagError, match="invalid tag"):
        build.check_tag(tag)


@pytest.mark.parametrize(
    "tag", ["mysite", "mysite:latest", "team/mysite:1.0", "localhost:5000/team/my_site:v1.2-rc"]
)
def test_valid_tags_pass(tag: str) -> None:
    """Ordinary references pass."""
    assert tag == build.check_tag(tag)


def test_default_tag_is_the_directory_name(tmp_path: Path) -> None:
    """Without --tag the image is <directory>:latest."""
    _, (result, _) = render_context(tmp_path, PROJECTS / "whitenoise-app")

    assert "whitenoise-app:latest" == result.tag


def test_render_only_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    """--render-only never writes into (or over) a directory that has files."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")

    with pytest.raises(KitError, match="exists and is not empty"):
        build.ContextDirectory(tmp_path / "out")
    assert "mine" == (tmp_path / "out" / "keep.txt").read_text()


def test_ignore_rules_follow_dockerignore_semantics() -> None:
    """Root-anchored patterns, ** patterns and ! exceptions, last match winning."""
    patterns = ["**/*.log", "build", "docs/*.md", "!docs/keep.md"]

    assert render._is_ignored("a/b/c.log", patterns)
    assert render._is_ignored("build/x.py", patterns)
    assert not render._is_ignored("src/build/x.py", patterns)
    assert render._is_ignored("docs/a.md", patterns)
    assert not render._is_ignored("docs/keep.md", patterns)


def test_a_lock_is_installed_as_locked_and_additions_resolve_around_it(tmp_path: Path) -> None:
    """The lock's lines keep their hashes; gunicorn and setproctitle are constrained to it."""
    context, _ = render_context(tmp_path, PROJECTS / "lock-pylock")
    lines = (context / "kitbuild" / "requirements.txt").read_text().splitlines()
    additions, _target, constraints = project_resolution()

    assert [build.GUNICORN_REQUIREMENT, build.PROCESS_TITLE_REQUIREMENT] == additions
    assert "sqlparse" in {pin.name for pin in constraints}
    assert any(
        line.startswith("sqlparse==0.5.3 --hash=sha256:") and "fake" not in line for line in lines
    )


def test_a_project_that_needs_a_newer_python_gets_trixie(tmp_path: Path) -> None:
    """A lock whose requires-python is >= 3.12 is built on trixie, with its 3.13 markers."""
    project = tmp_path / "project"
    shutil.copytree(PROJECTS / "lock-pylock", project)
    lock = project / "pylock.toml"
    lock.write_text(
        lock.read_text().replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"')
    )
    context, _ = render_context(tmp_path, project)

    assert "FROM kitbuild/python:trixie AS base" in (context / "Dockerfile").read_text()
    assert "3.13.5" == fake_fetch.calls[-1][1].python_full


def test_the_build_tools_are_resolved_for_the_target_and_fetched_into_their_folder(
    tmp_path: Path,
) -> None:
    """Uv (the host's version) and cyclonedx-bom are resolved for the image, fetched to tools/."""
    context, _ = render_context(tmp_path, PROJECTS / "postgres-app")
    requirements, resolve_target, _constraints = fake_resolve.calls[-1]
    pins, fetch_target = fake_fetch.calls[-1]

    assert [f"uv=={metadata.version('uv')}", build.SBOM_TOOL_REQUIREMENT] == requirements
    assert ["uv", "cyclonedx-bom"] == [pin.name for pin in pins]
    assert resolve_target == fetch_target == fake_fetch.calls[-2][1]
    assert (context / render.TOOLS_FOLDER / "django-5.2.19-py3-none-any.whl").is_file()
    assert (context / render.TOOLS_FOLDER / "sbom.py").is_file()
    installed = (context / "kitbuild" / "requirements.txt").read_text()
    assert "cyclonedx" not in installed
