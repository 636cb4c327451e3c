"""`kitbuild build` against the real engine: hermetic builds of real projects."""

from __future__ import annotations

import io
import json
import os
import platform
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from builder import cli
from builder.engine import DockerGateway
from builder.errors import BuildFailed
from builder.image import bases, wheelhouse
from tests.integration.conftest import PROJECTS, ROOT, TEST_REPOSITORY, BuildWithCli, Built

pytestmark = pytest.mark.docker


def test_mysite_builds_and_reports_tag_id_and_size(mysite_image: Built) -> None:
    """The build streams its steps and ends with the tag, the image id and the size."""
    assert "Step 1/" in mysite_image.out
    assert re.search(
        rf"kitbuild: built {re.escape(mysite_image.tag)} \(sha256:[0-9a-f]{{64}}, \d+ MB\)",
        mysite_image.out,
    )


def test_image_runs_as_a_fixed_non_root_user(gateway: DockerGateway, mysite_image: Built) -> None:
    """The image's user is 10001, and a container really runs as it."""
    assert "10001:10001" == gateway.summary(mysite_image.tag).user
    assert b"10001\n" == gateway.run(mysite_image.tag, ["id", "-u"], network_mode="none")


def test_runtime_stage_has_no_compiler_and_no_pip(
    gateway: DockerGateway, mysite_image: Built
) -> None:
    """gcc, cc, make and pip exist only in the build stage; mysqlclient works without them."""
    found = gateway.run(
        mysite_image.tag,
        ["sh", "-c", "for c in gcc cc g++ make pip pip3; do command -v $c; done; true"],
        network_mode="none",
    )
    driver = gateway.run(
        mysite_image.tag, ["python", "-c", "import MySQLdb; print('ok')"], network_mode="none"
    )

    assert b"" == found
    assert b"ok\n" == driver


def test_no_secret_in_history_labels_or_environment(
    gateway: DockerGateway, mysite_image: Built
) -> None:
    """No layer command, label or baked variable carries a secret-looking value.

    The build steps' RUN (where --build-env values are) is not even in the image's history:
    it ran in the steps stage, which the image does not contain.
    """
    summary = gateway.summary(mysite_image.tag)
    environment = gateway.run(mysite_image.tag, ["env"], network_mode="none").decode()
    secretish = re.compile(r"(secret|password|passwd|token|api_?key)\w*=", re.IGNORECASE)

    assert [] == [line for line in summary.history if secretish.search(line)]
    assert {} == {k: v for k, v in summary.labels.items() if secretish.search(f"{k}={v}")}
    assert [] == [line for line in environment.splitlines() if secretish.search(line)]
    assert not any("kitbuild_runtime.buildsteps" in line for line in summary.history)


def test_labels_name_the_project_and_versions(gateway: DockerGateway, mysite_image: Built) -> None:
    """OCI labels, the kit's version and the project's resolved Django version are set."""
    labels = gateway.summary(mysite_image.tag).labels

    assert "mysite" == labels["org.opencontainers.image.title"]
    assert labels["io.kitbuild.django-version"].startswith("5.2.")
    assert "mysite.settings" == labels["io.kitbuild.settings-module"]
    assert labels["org.opencontainers.image.created"].endswith("Z")


@pytest.mark.parametrize(
    ("limit", "cpus", "workers"),
    [
        ({"nano_cpus": 1_500_000_000}, 1.5, 4),  # --cpus=1.5
        ({"cpuset_cpus": "0"}, 1.0, 3),  # --cpuset-cpus=0
        ({}, float(len(os.sched_getaffinity(0))), 2 * len(os.sched_getaffinity(0)) + 1),
    ],
)
def test_plan_inside_the_image_honours_the_cpu_limit(
    gateway: DockerGateway,
    mysite_image: Built,
    limit: dict[str, object],
    cpus: float,
    workers: int,
) -> None:
    """`docker run [--cpus|--cpuset-cpus] IMAGE plan`: the container's CPUs, not the host's."""
    output = gateway.run(
        mysite_image.tag,
        ["plan"],
        network_mode="none",
        environment={"DATABASE_MAX_CONNECTIONS": "100"},
        **limit,
    )
    plan = json.loads(output)

    assert (cpus, workers, 96) == (plan["cpus"], plan["workers"], plan["budget"])
    assert plan["peak_connections"] <= plan["budget"]


def test_builds_have_no_network(gateway: DockerGateway, tmp_path: Path) -> None:
    """Builds run with network_mode none: only loopback exists (and the probe can fail)."""
    context = tmp_path / "probe"
    shutil.copytree(ROOT / "tests" / "fixtures" / "contexts" / "network-probe", context)
    tag = f"{TEST_REPOSITORY}/network-probe:ci"
    try:
        # nocache: the build cache does not key on the network, so each probe must really run.
        gateway.build(context, tag, network_mode="none", nocache=True)
        with pytest.raises(BuildFailed, match=r"step 2/2"):
            gateway.build(context, tag + "-bridged", network_mode="bridge", nocache=True)
    finally:
        gateway.remove_image(tag)


def test_code_only_change_reruns_only_the_code_steps(
    gateway: DockerGateway, build_with_cli: BuildWithCli, tmp_path: Path
) -> None:
    """In a git checkout, touching one .py file re-runs the steps after the code only.

    The steps stage's COPY app/ and its one RUN, the final stage's two COPY --from=steps
    and its USER (metadata). The creation label comes from the last commit, so it stays
    cached before the code; an unchanged rebuild re-runs nothing.
    """
    project = tmp_path / "mysite"
    shutil.copytree(ROOT / "examples" / "mysite", project)
    _git_commit(project)
    # One tag: org.opencontainers.image.version comes from it, and a new one is a new label.
    tag = f"{TEST_REPOSITORY}/code-only:{uuid.uuid4().hex[:8]}"
    first = build_with_cli(project, tag=tag)
    views = project / "hits" / "views.py"
    # Unique each run: an identical change from an earlier run would be in the build cache.
    views.write_text(views.read_text() + f"\n# a code-only change {uuid.uuid4()}\n")
    second = build_with_cli(project, tag=tag)
    third = build_with_cli(project, tag=tag)

    assert (0, 0, 0) == (first.code, second.code, third.code), second
    rerun = rerun_steps(second.out)
    expected = [
        "COPY app/ /app/",
        "RUN python -m kitbuild_runtime.buildsteps ",
        "COPY --from=steps --chown=10001:10001 /app/ /app/",
        "COPY --from=steps /kitbuild-outside/ /",
        "USER 10001:10001",
    ]
    assert len(expected) == len(rerun), (rerun_steps(first.out), rerun)
    assert all(step.startswith(start) for step, start in zip(rerun, expected, strict=True)), rerun
    assert [] == rerun_steps(third.out)
    assert (
        "2022-04-15T05:20:00Z"
        == (gateway.summary(second.tag).labels["org.opencontainers.image.created"])
    )


def _git_commit(project: Path) -> None:
    env = {"GIT_AUTHOR_DATE": "@1650000000 +0000", "GIT_COMMITTER_DATE": "@1650000000 +0000"}
    for argv in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                  "commit", "-qm", "one"]):  # fmt: skip
        subprocess.run(["git", *argv], cwd=project, check=True, env={**os.environ, **env})


def rerun_steps(output: str) -> list[str]:
    """The steps of a classic build's output that did not come from the cache (FROM aside)."""
    lines = [line.strip() for line in output.splitlines()]
    rerun = []
    for index, line in enumerate(lines):
        match = re.match(r"^Step \d+/\d+ : (.*)$", line)
        if match and not match.group(1).startswith("FROM "):
            cached = index + 1 < len(lines) and lines[index + 1] == "---> Using cache"
            if not cached:
                rerun.append(match.group(1))
    return rerun


@pytest.mark.parametrize(
    "name",
    [
        "pyproject-app",  # dependencies in pyproject.toml
        "split-settings",  # config/settings/production.py, -r includes
        "dburl-app",  # DATABASE_URL through dj-database-url, PyMySQL
        "whitenoise-app",  # static files served by whitenoise
        "postgres-app",  # a PostgreSQL driver only: kitbuild adds mysqlclient
        "django6-app",  # Django 6 on the trixie base, manage.py in src/
    ],
)
def test_fixture_projects_build_and_pass_django_checks(
    gateway: DockerGateway, build_with_cli: BuildWithCli, name: str
) -> None:
    """Each project shape builds without network and its settings load in the image."""
    built = build_with_cli(PROJECTS / name)
    assert 0 == built.code, built

    # Through kitbuild's settings overlay, which needs a database URL (check never connects).
    check = gateway.run(
        built.tag,
        ["python", "manage.py", "check"],
        network_mode="none",
        environment={"DATABASE_URL": "mysql://app:pw@db.invalid:3306/app"},
    )
    assert b"System check identified no issues" in check


def test_whitenoise_project_has_hashed_static_files(
    gateway: DockerGateway, build_with_cli: BuildWithCli
) -> None:
    """Static files were collected at build time with whitenoise's manifest storage."""
    built = build_with_cli(PROJECTS / "whitenoise-app")
    listing = gateway.run(built.tag, ["ls", "/app/staticfiles"], network_mode="none")

    assert b"staticfiles.json" in listing
    assert re.search(rb"site\.[0-9a-f]{12}\.css", listing)


def test_src_layout_project_builds_and_imports_without_manage_py(
    gateway: DockerGateway, build_with_cli: BuildWithCli
) -> None:
    """A src layout builds: its statics are collected, its settings and WSGI app import.

    Only the project's manage.py adds src/ to sys.path; the build steps, kitbuild's settings
    overlay and gunicorn never run manage.py.
    """
    built = build_with_cli(PROJECTS / "src-layout-app")
    assert 0 == built.code, built

    loaded = gateway.run(
        built.tag,
        [
            "python",
            "-c",
            "import django, os; django.setup(); from django.conf import settings;"
            " import importlib; importlib.import_module(os.environ['KIT_WSGI_APPLICATION']"
            ".rsplit('.', 1)[0]); print(settings.ROOT_URLCONF)",
        ],
        network_mode="none",
        environment={"DATABASE_URL": "mysql://app:pw@db.invalid:3306/app"},
    )
    listing = gateway.run(built.tag, ["ls", "/app/staticfiles/portal"], network_mode="none")

    assert b"portal.urls" in loaded
    assert b"site.css" in listing


def test_failed_build_names_the_step_and_leaves_no_tag(
    gateway: DockerGateway, build_with_cli: BuildWithCli
) -> None:
    """A project whose collectstatic fails: one error line with the step; the tag is absent."""
    built = build_with_cli(PROJECTS / "bad-build-fails")

    assert 1 == built.code
    assert re.match(
        r"kitbuild: error: build failed at step \d+/\d+, in build step loading the settings ",
        built.err,
    )
    assert 1 == built.err.count("\n")
    assert "ModuleNotFoundError" in built.out
    assert not gateway.image_exists(built.tag)


def test_base_image_that_is_neither_here_nor_pullable(build_with_cli: BuildWithCli) -> None:
    """--base-image naming an image no one has is one clear line, exit 1."""
    built = build_with_cli(
        ROOT / "examples" / "mysite", "--base-image", "kitbuild-test/no-such-base:1"
    )

    assert 1 == built.code
    assert "base image kitbuild-test/no-such-base:1 is neither here nor pullable" in built.err


def test_docker_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the engine unreachable, the build says so in one line."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    err = io.StringIO()
    code = cli.main(["build", str(ROOT / "examples" / "mysite")], stdout=io.StringIO(), stderr=err)

    assert 1 == code
    assert err.getvalue().startswith("kitbuild: error: cannot reach the Docker engine")
    assert 1 == err.getvalue().count("\n")


def test_kit_base_target_matches_what_the_image_reports(gateway: DockerGateway) -> None:
    """bases.toml's Python and glibc give the same wheel tags pip reports inside each base."""
    for suite in bases.suites():
        reference = bases.image_reference("build", suite.name)
        bases.ensure_suite(suite.name, gateway)
        probed = wheelhouse.probe_target(gateway, reference)
        assert suite.python == probed.python
        assert wheelhouse.target_for(probed.python_full, suite.glibc, platform.machine()) == probed
