"""A deployment's env file, read, checked and planned once for every engine (no Docker)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from builder import cli
from builder.deploy import description
from builder.deploy.output import MARKER, Rendered
from builder.errors import DeployError

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"


def env_file(tmp_path: Path, text: str) -> Path:
    """An env file with ``text``."""
    path = tmp_path / "site.env"
    path.write_text(text)
    return path


def with_changes(source: Path, tmp_path: Path, **changes: str | None) -> Path:
    """A copy of ``source`` with variables replaced, added, or (None) removed."""
    lines = []
    for line in source.read_text().splitlines():
        name = line.partition("=")[0]
        if name in changes:
            value = changes.pop(name)
            if value is not None:
                lines.append(f"{name}={value}")
        else:
            lines.append(line)
    lines += [f"{name}={value}" for name, value in changes.items() if value is not None]
    return env_file(tmp_path, "\n".join(lines) + "\n")


def test_production_env_file_plans_as_its_containers_will() -> None:
    """production.env: 3 replicas at 1.5 CPUs, 200 connections: 4 x 16 each, 192 in all."""
    deployment = description.load(DEPLOY / "production.env")
    plan = deployment.plan

    assert ("mysite:latest", 3, 0, 1.5) == (
        deployment.app_image,
        deployment.replicas,
        deployment.surge,
        deployment.web_cpus,
    )
    assert ("kitbuild/mysql:latest", "db", 200) == (
        deployment.database.image,
        deployment.database.host,
        deployment.database.max_connections,
    )
    assert (4, 16, 192, 192) == (
        plan.workers,
        plan.threads,
        plan.peak_connections_all,
        plan.budget,
    )
    assert "set by WEB_CPUS" == plan.reasons["cpus"]


def test_the_plan_is_the_one_kitbuild_plan_prints(tmp_path: Path) -> None:
    """The deployment's plan equals `kitbuild plan` with the same CPUs, server and replicas."""
    out = io.StringIO()
    argv = ["plan", "--cpus", "1.5", "--max-connections", "200", "--replicas", "3", "--json"]
    assert 0 == cli.main([*argv, "--cgroup-root", str(tmp_path)], env={}, stdout=out)
    printed = __import__("json").loads(out.getvalue())
    plan = description.load(DEPLOY / "production.env").plan.as_dict()

    numbers = {k for k in printed if k not in {"reasons", "memory"}}
    assert {k: printed[k] for k in numbers} == {k: plan[k] for k in numbers}


def test_an_external_server_runs_no_database_of_its_own(tmp_path: Path) -> None:
    """DATABASE_HOST set: the deployment uses that server and starts none."""
    path = with_changes(DEPLOY / "staging.env", tmp_path, DATABASE_HOST="db.example.org")

    database = description.load(path).database

    assert (None, "db.example.org") == (database.image, database.host)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"KIT_REPLICAS": None}, "KIT_REPLICAS is not set"),
        ({"WEB_CPUS": None}, "WEB_CPUS is not set"),
        ({"KIT_REPLICAS": "0"}, "KIT_REPLICAS='0' is out of range"),
        ({"KIT_MAX_SURGE": "-1"}, "KIT_MAX_SURGE='-1' is out of range"),
        ({"WEB_CPUS": "lots"}, "WEB_CPUS='lots' is not a CPU count"),
        ({"WEB_MEMORY": "lots"}, "WEB_MEMORY='lots' is not a size"),
        ({"DATABASE_MAX_CONNECTIONS": "5"}, "DATABASE_MAX_CONNECTIONS='5' is out of range"),
        ({"KIT_REPLICAS": "40", "KIT_MAX_SURGE": "20"}, "budget too small"),
        ({"APP_IMAGE": None}, "APP_IMAGE is not set"),
        ({"SECRETS_DIR": None}, "SECRETS_DIR is not set"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is not set"),
    ],
)
def test_bad_env_files_are_one_line_naming_file_and_variable(
    tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    """Each bad or missing variable is refused with one line that names the file."""
    path = with_changes(DEPLOY / "staging.env", tmp_path, **changes)

    with pytest.raises(DeployError) as error:
        description.load(path)

    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_line_that_is_not_name_equals_value_is_refused(tmp_path: Path) -> None:
    """A stray line is named with its line number."""
    path = env_file(tmp_path, "# fine\nKIT_REPLICAS=2\nexport WEB_CPUS 1\n")

    with pytest.raises(DeployError, match=r"site\.env:3: 'export WEB_CPUS 1' is not a NAME=value"):
        description.read_env_file(path)


def test_a_missing_env_file_says_how_to_name_one(tmp_path: Path) -> None:
    """No such file: the error names it and the option."""
    with pytest.raises(DeployError, match=r"env file .*nosuch\.env not found: give --env-file"):
        description.load(tmp_path / "nosuch.env")


def test_missing_secret_files_are_named_with_the_command_that_makes_them(tmp_path: Path) -> None:
    """A secrets directory without db_password: the error names the file and make-secrets."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "db_root_password").write_text("x\n")
    path = with_changes(DEPLOY / "staging.env", tmp_path, SECRETS_DIR=str(secrets))

    with pytest.raises(DeployError, match=r"secret file .*db_password is missing or empty"):
        description.check_secrets(description.load(path))


def test_cli_unknown_target_is_one_line_and_exit_1() -> None:
    """`kitbuild deploy nomad ...`: exit 1, one line naming the target."""
    err = io.StringIO()

    code = cli.main(
        ["deploy", "nomad", "--env-file", str(DEPLOY / "staging.env")],
        stdout=io.StringIO(),
        stderr=err,
    )

    assert 1 == code
    assert err.getvalue().startswith("kitbuild: error: unknown deploy target 'nomad'")
    assert 1 == err.getvalue().count("\n")


def test_a_directory_is_written_whole_and_may_replace_an_earlier_render(tmp_path: Path) -> None:
    """Files land together with the marker; a second render replaces the first one's files."""
    out = tmp_path / "k8s"
    Rendered({"a.yaml": "a\n", "sub/b.yaml": "b\n"}, directory=True).write(out, io.StringIO())
    Rendered({"c.yaml": "c\n"}, directory=True).write(out, io.StringIO())

    assert {MARKER, "c.yaml"} == {p.name for p in out.iterdir()}


def test_a_directory_with_someone_elses_files_is_left_alone(tmp_path: Path) -> None:
    """A non-empty directory kitbuild did not write is refused, untouched."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    with pytest.raises(DeployError, match="holds files kitbuild did not write"):
        Rendered({"a.yaml": "a\n"}, directory=True).write(out, io.StringIO())
    assert ["keep.txt"] == [p.name for p in out.iterdir()]


def test_a_single_file_goes_to_stdout_without_o(tmp_path: Path) -> None:
    """A stack file with no -o is printed; with -o it is written, nothing else."""
    stdout = io.StringIO()
    rendered = Rendered({"stack.yaml": "services: {}\n"}, directory=False)

    assert "stdout" == rendered.write(None, stdout)
    rendered.write(tmp_path / "stack.yaml", stdout)
    assert "services: {}\n" == stdout.getvalue() == (tmp_path / "stack.yaml").read_text()
    assert ["stack.yaml"] == [p.name for p in tmp_path.iterdir()]
