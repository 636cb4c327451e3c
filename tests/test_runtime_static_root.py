"""The start's check that STATIC_ROOT holds what the build collected."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitbuild_runtime import environment, staticroot
from tests.test_build_render import PROJECTS, ROOT, render_context


def test_collected_files_where_the_settings_look_are_no_problem(tmp_path: Path) -> None:
    """A STATIC_ROOT with files in it, after a build that collected: nothing to say."""
    (tmp_path / "admin").mkdir()

    assert staticroot.problem(tmp_path, collected=True) is None
    assert staticroot.problem(str(tmp_path), collected=True) is None


@pytest.mark.parametrize("static_root", [None, ""])
def test_no_static_root_is_no_problem(static_root: str | None) -> None:
    """Without STATIC_ROOT there is nothing the build could have collected into."""
    assert staticroot.problem(static_root, collected=True) is None


def test_a_build_that_did_not_collect_is_never_warned_about(tmp_path: Path) -> None:
    """--no-collectstatic (files served elsewhere): an empty or missing root is expected."""
    assert staticroot.problem(tmp_path, collected=False) is None
    assert staticroot.problem(tmp_path / "nope", collected=False) is None


def test_an_empty_static_root_after_collecting_names_it_and_the_fix(tmp_path: Path) -> None:
    """The settings name an empty directory: one line naming it, the cause and the fix."""
    message = staticroot.problem(tmp_path, collected=True)

    assert message == (
        f"STATIC_ROOT={tmp_path} is an empty directory in this container, but the build "
        "collected static files: a variable that decides STATIC_ROOT differs between the "
        "build (--build-env) and the container; give it the same value in both, or set "
        "STATIC_ROOT to where the build collected"
    )


def test_a_missing_static_root_after_collecting_says_missing(tmp_path: Path) -> None:
    """The settings name a directory that does not exist (e.g. under a fresh /tmp)."""
    message = staticroot.problem(tmp_path / "ephios" / "static", collected=True)

    assert message is not None
    assert message.startswith(f"STATIC_ROOT={tmp_path}/ephios/static is missing in this")


@pytest.mark.parametrize(
    ("project", "value"),
    [(ROOT / "examples" / "mysite", "1"), (PROJECTS / "pyproject-app", "0")],
)
def test_the_image_says_whether_its_build_collected(
    tmp_path: Path, project: Path, value: str
) -> None:
    """The Dockerfile's ENV carries KIT_STATIC_COLLECTED: 1 with STATIC_ROOT, 0 without."""
    context, _ = render_context(tmp_path, project)

    assert f"KIT_STATIC_COLLECTED={value} \\" in (context / "Dockerfile").read_text()
    assert staticroot.COLLECTED_VARIABLE in environment.KNOWN_NAMES
