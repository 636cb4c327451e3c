"""Rebuilds with the network blocked: the wheelhouse comes from kitbuild's cache."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from builder.engine import DockerGateway
from tests.integration.conftest import ROOT, TEST_REPOSITORY

pytestmark = [pytest.mark.docker, pytest.mark.network]

#: Nothing listens on port 9 (discard): every request to the index or a proxy is refused.
_UNREACHABLE = "http://127.0.0.1:9"


def _blocked(env: dict[str, str]) -> dict[str, str]:
    """The environment of a machine whose index and proxies cannot be reached."""
    blocked = {**env, "PIP_INDEX_URL": f"{_UNREACHABLE}/simple/", "PIP_RETRIES": "0"}
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        blocked[name] = _UNREACHABLE
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "no_proxy", "NO_PROXY"):
        blocked.pop(name, None)
    return blocked


def _kitbuild(project: Path, tag: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "builder", "build", str(project), "--tag", tag],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def test_code_only_rebuild_needs_no_network_and_a_new_dependency_names_itself(
    gateway: DockerGateway, tmp_path: Path
) -> None:
    """Blocked index: a code-only rebuild succeeds from the cache; a new requirement fails.

    The code-only rebuild resolves nothing and fetches nothing (both are cached). The
    failure is one line that names the requirement the cache does not have, and no image
    is tagged.
    """
    project = tmp_path / "mysite"
    subprocess.run(["cp", "-r", str(ROOT / "examples" / "mysite"), str(project)], check=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    tags = [f"{TEST_REPOSITORY}/offline:{n}" for n in range(3)]
    try:
        online = _kitbuild(project, tags[0], env)
        assert 0 == online.returncode, online.stderr
        views = project / "hits" / "views.py"
        views.write_text(views.read_text() + f"\n# a code-only change {uuid.uuid4()}\n")

        offline = _kitbuild(project, tags[1], _blocked(env))

        assert 0 == offline.returncode, offline.stdout[-2000:] + offline.stderr
        assert "kitbuild: dependencies unchanged; the wheelhouse comes from" in offline.stdout
        assert gateway.image_exists(tags[1])

        requirements = project / "requirements.txt"
        requirements.write_text(requirements.read_text() + "six==1.16.0\n")
        changed = _kitbuild(project, tags[2], _blocked(env))

        assert 1 == changed.returncode
        assert 1 == changed.stderr.count("\n"), changed.stderr
        # An unlocked project is resolved before it is fetched: either step may be the one
        # that finds the index unreachable (uv may still have the new package's metadata).
        assert changed.stderr.startswith(
            ("kitbuild: error: cannot resolve ", "kitbuild: error: cannot fetch ")
        ), changed.stderr
        assert "six==1.16.0" in changed.stderr
        assert not gateway.image_exists(tags[2])
    finally:
        for tag in tags:
            gateway.remove_image(tag)
