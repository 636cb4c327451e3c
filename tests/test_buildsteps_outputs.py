"""The steps stage's own work: build files in place and gone again, STATIC_ROOT mirrored.

kitbuild_runtime.buildsteps runs in the image; these parts need no Django and no Docker.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from kitbuild_runtime.buildsteps import PlacedFiles, mirror_outside, resolve_own_hostname


def test_build_files_are_in_place_during_the_steps_and_gone_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative destination (made with its folders) and the project's own file put back."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "given.toml"
    source.write_text("secret = 1\n")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.toml").write_text("the project's example\n")
    pairs = [
        [str(source), "deep/er/secrets.toml"],
        [str(source), "config/local.toml"],
    ]

    with PlacedFiles(pairs):
        during = [
            (tmp_path / "deep" / "er" / "secrets.toml").read_text(),
            (tmp_path / "config" / "local.toml").read_text(),
        ]

    assert ["secret = 1\n", "secret = 1\n"] == during
    assert not (tmp_path / "deep").exists()
    assert "the project's example\n" == (tmp_path / "config" / "local.toml").read_text()


def test_build_files_are_taken_away_when_a_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception inside the block still removes the file (the stage is discarded anyway)."""
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "given"
    source.write_text("x")

    with pytest.raises(RuntimeError), PlacedFiles([[str(source), "placed"]]):
        raise RuntimeError

    assert not (tmp_path / "placed").exists()


def test_static_root_outside_the_project_is_mirrored_with_its_path(tmp_path: Path) -> None:
    """The tree lands under the mirror at its own path; the folders above keep their modes."""
    project, outside = tmp_path / "app", tmp_path / "out"
    project.mkdir()
    static = tmp_path / "srv" / "static"
    (static / "css").mkdir(parents=True)
    (static / "css" / "site.css").write_text("body{}")
    os.chmod(tmp_path / "srv", 0o1777)

    mirrored = mirror_outside(str(static), str(project), str(outside))

    copy = outside / static.relative_to("/")
    assert str(static) == mirrored
    assert "body{}" == (copy / "css" / "site.css").read_text()
    assert 0o1777 == stat.S_IMODE((outside / (tmp_path / "srv").relative_to("/")).stat().st_mode)


@pytest.mark.parametrize("where", ["inside", "unset", "missing"])
def test_nothing_is_mirrored_for_a_static_root_inside_unset_or_missing(
    tmp_path: Path, where: str
) -> None:
    """Inside the project /app carries it; unset or missing: nothing; the mirror still exists."""
    project, outside = tmp_path / "app", tmp_path / "out"
    (project / "static").mkdir(parents=True)
    root = {
        "inside": str(project / "static"),
        "unset": None,
        "missing": str(tmp_path / "nowhere"),
    }[where]

    assert mirror_outside(root, str(project), str(outside)) is None
    assert [] == list(outside.iterdir())


def test_own_hostname_is_made_to_resolve_when_it_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no network the build container's name may not resolve: it gets 127.0.1.1."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n")
    monkeypatch.setattr(socket, "gethostname", lambda: "buildbox")

    def unresolvable(name: str) -> str:
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "gethostbyname", unresolvable)

    assert resolve_own_hostname(str(hosts))
    assert hosts.read_text().endswith("127.0.1.1\tbuildbox\n")


def test_a_resolving_hostname_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the name resolves, /etc/hosts is not touched."""
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "10.0.0.5")

    assert not resolve_own_hostname(str(hosts))
    assert "" == hosts.read_text()
