"""`kitbuild deploy swarm`: the stack file's numbers come from the env file's plan (no Docker)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from builder import cli
from builder.deploy import description, swarm, targets
from tests.test_deploy_description import DEPLOY, with_changes


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """The three secret files, made by deploy/make-secrets."""
    directory = tmp_path / "secrets"
    subprocess.run(["sh", str(DEPLOY / "make-secrets"), str(directory)], check=True, stdout=-3)
    return directory


def swarm_env(tmp_path: Path, secrets_dir: Path, **changes: str | None) -> Path:
    """production.env with the swarm test's sizes: 3 replicas of 0.5 CPU, surge 1, 40 conns."""
    settings: dict[str, str | None] = {
        "SECRETS_DIR": str(secrets_dir),
        "WEB_CPUS": "0.5",
        "KIT_MAX_SURGE": "1",
        "DATABASE_MAX_CONNECTIONS": "40",
        "PROXY_PORT": "18080",
        **changes,
    }
    return with_changes(DEPLOY / "production.env", tmp_path, **settings)


def render(env: Path) -> tuple[dict[str, Any], str]:
    """`kitbuild deploy swarm --env-file env` to stdout; the parsed stack and its text."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["deploy", "swarm", "--env-file", str(env)], stdout=out, stderr=err)
    assert 0 == code, err.getvalue()
    return yaml.safe_load(out.getvalue()), out.getvalue()


def test_web_is_sized_and_rolled_as_the_plan_counts(tmp_path: Path, secrets_dir: Path) -> None:
    """3 replicas at 0.5 CPU; start-first, 1 at a time, a stop grace period apart; rollback."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir))
    web = stack["services"]["web"]
    deploy = web["deploy"]

    assert (3, "dnsrr") == (deploy["replicas"], deploy["endpoint_mode"])
    assert "0.5" == deploy["resources"]["limits"]["cpus"]
    assert {
        "parallelism": 1,
        "order": "start-first",
        "delay": "70s",
        "failure_action": "rollback",
        "monitor": "30s",
        "max_failure_ratio": 0,
    } == deploy["update_config"]
    assert ("start-first", 1, "70s", "pause") == (
        deploy["rollback_config"]["order"],
        deploy["rollback_config"]["parallelism"],
        deploy["rollback_config"]["delay"],
        deploy["rollback_config"]["failure_action"],
    )
    assert {"condition": "any", "delay": "5s"} == deploy["restart_policy"]
    assert "70s" == web["stop_grace_period"]
    assert ["serve"] == web["command"]
    assert ["CMD", "python", "-m", "kitbuild_runtime", "healthcheck"] == web["healthcheck"]["test"]
    # DATABASE_WAIT_TIMEOUT 60 + KIT_MIGRATION_WAIT_TIMEOUT 300 + 60 s to boot.
    assert "420s" == web["healthcheck"]["start_period"]
    assert {"max-size": "20m", "max-file": "20"} == web["logging"]["options"]
    assert web["read_only"] is True
    assert "ports" not in web  # the proxy is the way in


def test_the_app_environment_carries_the_plan_inputs_and_no_secret(
    tmp_path: Path, secrets_dir: Path
) -> None:
    """Every app container gets the plan's variables and *_FILE paths; no secret value is in."""
    stack, text = render(swarm_env(tmp_path, secrets_dir))
    services = stack["services"]
    environment = services["web"]["environment"]

    assert environment == services["migrate"]["environment"] == services["static"]["environment"]
    assert {
        "KIT_REPLICAS": "3",
        "KIT_MAX_SURGE": "1",
        "DATABASE_MAX_CONNECTIONS": "40",
        "DATABASE_HOST": "db",
        "DATABASE_PASSWORD_FILE": "/run/secrets/db_password",
        "SECRET_KEY_FILE": "/run/secrets/secret_key",
    }.items() <= environment.items()
    assert not set(environment) & description.DEPLOYMENT_VARIABLES
    assert not [p for p in secrets_dir.iterdir() if p.read_text().strip() in text]
    assert {
        name: {"file": str(secrets_dir / name)}
        for name in ("db_root_password", "db_password", "secret_key")
    } == stack["secrets"]


def test_own_server_takes_max_connections_from_the_same_variable(
    tmp_path: Path, secrets_dir: Path
) -> None:
    """The own server: --max-connections=DATABASE_MAX_CONNECTIONS, dnsrr, stopped first."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir))
    db = stack["services"]["db"]

    assert ["--max-connections=40"] == db["command"]
    assert ("dnsrr", "stop-first") == (
        db["deploy"]["endpoint_mode"],
        db["deploy"]["update_config"]["order"],
    )
    assert ["db-data:/var/lib/mysql"] == db["volumes"]


def test_an_external_server_runs_no_db_and_needs_no_root_password(
    tmp_path: Path, secrets_dir: Path
) -> None:
    """DATABASE_HOST set: no db service, web talks to that host, db_root_password not needed."""
    (secrets_dir / "db_root_password").unlink()
    env = swarm_env(tmp_path, secrets_dir, DATABASE_HOST="mysql.internal", DATABASE_PORT="3307")

    stack, _ = render(env)

    assert "db" not in stack["services"]
    assert ("mysql.internal", "3307") == (
        stack["services"]["web"]["environment"]["DATABASE_HOST"],
        stack["services"]["web"]["environment"]["DATABASE_PORT"],
    )
    assert {"db_password", "secret_key"} == set(stack["secrets"])
    assert {"static"} == set(stack["volumes"])


def test_migrations_and_static_files_are_one_shot_jobs(tmp_path: Path, secrets_dir: Path) -> None:
    """The migrate and static services are replicated jobs, retried only on failure."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir))
    services = stack["services"]

    for name, command in (("migrate", ["migrate"]), ("static", ["static", "/srv/static"])):
        assert command == services[name]["command"]
        assert "replicated-job" == services[name]["deploy"]["mode"]
        assert "on-failure" == services[name]["deploy"]["restart_policy"]["condition"]


def test_the_proxy_is_published_in_host_mode_by_default(tmp_path: Path, secrets_dir: Path) -> None:
    """By default (dnsrr) the proxy is published in host mode and replaced stop-first."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir))
    proxy = stack["services"]["proxy"]

    assert [{"target": 8080, "published": 18080, "protocol": "tcp", "mode": "host"}] == proxy[
        "ports"
    ]
    assert "stop-first" == proxy["deploy"]["update_config"]["order"]


def test_vip_mode_uses_the_routing_mesh(tmp_path: Path, secrets_dir: Path) -> None:
    """SWARM_ENDPOINT_MODE=vip: virtual IPs, ingress publishing, a start-first proxy."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir, SWARM_ENDPOINT_MODE="vip"))
    services = stack["services"]

    assert ("vip", "vip") == (
        services["web"]["deploy"]["endpoint_mode"],
        services["db"]["deploy"]["endpoint_mode"],
    )
    assert "ingress" == services["proxy"]["ports"][0]["mode"]
    assert "start-first" == services["proxy"]["deploy"]["update_config"]["order"]


def test_no_surge_means_stop_first(tmp_path: Path, secrets_dir: Path) -> None:
    """KIT_MAX_SURGE=0: web is updated stop-first, one at a time, with no delay needed."""
    stack, _ = render(swarm_env(tmp_path, secrets_dir, KIT_MAX_SURGE="0"))
    update = stack["services"]["web"]["deploy"]["update_config"]

    assert (1, "stop-first") == (update["parallelism"], update["order"])
    assert "delay" not in update


def test_a_surge_of_two_updates_two_at_a_time(tmp_path: Path, secrets_dir: Path) -> None:
    """KIT_MAX_SURGE=2: parallelism 2; the delay is the stop grace period the file sets."""
    env = swarm_env(tmp_path, secrets_dir, KIT_MAX_SURGE="2", WEB_STOP_GRACE_PERIOD="1m30s")
    stack, _ = render(env)
    web = stack["services"]["web"]

    assert (2, "90s", "90s") == (
        web["deploy"]["update_config"]["parallelism"],
        web["deploy"]["update_config"]["delay"],
        web["stop_grace_period"],
    )


def test_staging_without_proxy_publishes_web(tmp_path: Path, secrets_dir: Path) -> None:
    """staging.env (no proxy): web is published at WEB_PORT; its loopback address is noted."""
    env = with_changes(DEPLOY / "staging.env", tmp_path, SECRETS_DIR=str(secrets_dir))
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(["deploy", "swarm", "--env-file", str(env)], stdout=out, stderr=err)
    stack = yaml.safe_load(out.getvalue())

    assert 0 == code, err.getvalue()
    assert {"db", "migrate", "web"} == set(stack["services"])
    assert [{"target": 8000, "published": 8000, "protocol": "tcp", "mode": "host"}] == stack[
        "services"
    ]["web"]["ports"]
    assert "WEB_ADDRESS=127.0.0.1 is not applied" in err.getvalue()


def test_the_rendered_file_is_what_swarm_module_renders(tmp_path: Path, secrets_dir: Path) -> None:
    """-o writes the same text as stdout shows, and nothing else."""
    env = swarm_env(tmp_path, secrets_dir)
    out = tmp_path / "out" / "stack.yaml"
    _, text = render(env)

    code = cli.main(
        ["deploy", "swarm", "--env-file", str(env), "-o", str(out)], stderr=io.StringIO()
    )

    assert 0 == code
    assert text == out.read_text()
    assert ["stack.yaml"] == [p.name for p in out.parent.iterdir()]
    deployment = description.load(env)
    assert text == targets.render(swarm, deployment).files[f"{deployment.name}.stack.yaml"]


@pytest.mark.parametrize(
    ("changes", "remove", "message"),
    [
        ({"KIT_REPLICAS": None}, None, "KIT_REPLICAS is not set"),
        ({"KIT_REPLICAS": "30", "KIT_MAX_SURGE": "10"}, None, "budget too small"),
        ({"KIT_MAX_SURGE": "40"}, None, "budget too small"),
        ({}, "secret_key", "secret file"),
        ({"SECRET_KEY": "x" * 40}, None, "SECRET_KEY holds a secret's value"),
        ({"DATABASE_URL": "mysql://a:b@h/d"}, None, "DATABASE_URL holds a secret's value"),
        ({"SWARM_ENDPOINT_MODE": "mesh"}, None, "SWARM_ENDPOINT_MODE='mesh' is not a mode"),
        ({"WEB_STOP_GRACE_PERIOD": "50s"}, None, "must be longer than GUNICORN_GRACEFUL_TIMEOUT"),
        ({"KIT_MIGRATION_WAIT_TIMEOUT": "soon"}, None, "KIT_MIGRATION_WAIT_TIMEOUT='soon'"),
    ],
)
def test_bad_input_is_one_line_exit_1_and_nothing_written(
    tmp_path: Path,
    secrets_dir: Path,
    changes: dict[str, str | None],
    remove: str | None,
    message: str,
) -> None:
    """Each bad env file: exit 1, one line on stderr naming the problem, no file written."""
    if remove:
        (secrets_dir / remove).unlink()
    env = swarm_env(tmp_path, secrets_dir, **changes)
    out = tmp_path / "out" / "stack.yaml"
    stdout, stderr = io.StringIO(), io.StringIO()

    code = cli.main(
        ["deploy", "swarm", "--env-file", str(env), "-o", str(out)], stdout=stdout, stderr=stderr
    )

    assert 1 == code
    assert message in stderr.getvalue()
    assert 1 == stderr.getvalue().count("\n"), stderr.getvalue()
    assert stderr.getvalue().startswith("kitbuild: error: ")
    assert ("", False) == (stdout.getvalue(), out.parent.exists())


def test_an_unknown_target_writes_nothing(tmp_path: Path, secrets_dir: Path) -> None:
    """`kitbuild deploy nomad`: exit 1, one line naming swarm, nothing written."""
    out = tmp_path / "stack.yaml"
    stderr = io.StringIO()

    code = cli.main(
        ["deploy", "nomad", "--env-file", str(swarm_env(tmp_path, secrets_dir)), "-o", str(out)],
        stderr=stderr,
    )

    assert 1 == code
    assert "unknown deploy target 'nomad': use one of" in stderr.getvalue()
    assert "swarm" in stderr.getvalue()
    assert 1 == stderr.getvalue().count("\n")
    assert not out.exists()
