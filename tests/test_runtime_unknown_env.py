"""Variables the kit does not read: the entrypoint warns at start, naming the closest one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import kitbuild_runtime
from kitbuild_runtime import capacity, entrypoint, environment

RUNTIME = Path(kitbuild_runtime.__file__).parent

KNOWN = environment.KNOWN_NAMES | {setting.env for setting in capacity.SETTINGS}


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("GUNICORN_TIMOUT", "GUNICORN_TIMEOUT"),
        ("DATABASE_MAX_CONECTIONS", "DATABASE_MAX_CONNECTIONS"),
        ("DATABASE_PASWORD_FILE", "DATABASE_PASSWORD_FILE"),
        ("KIT_REPLICA", "KIT_REPLICAS"),
        ("TLS_CERT", "TLS_CERT_PATH"),
        ("ALLOWED_HOST", "ALLOWED_HOSTS"),
        ("SECRET_KY", "SECRET_KEY"),
    ],
)
def test_a_misspelt_variable_is_reported_with_the_closest_known_name(
    name: str, closest: str
) -> None:
    """A near miss of a kit variable, with or without a kit prefix, names the one it missed."""
    assert [(name, closest)] == environment.unknown_variables({name: "1"}, KNOWN)


def test_a_prefixed_variable_with_nothing_close_is_reported_without_a_suggestion() -> None:
    """KIT_*, DATABASE_*, GUNICORN_* and TLS_* belong to the kit: unknown ones are reported."""
    assert [("KIT_ZQXW", None)] == environment.unknown_variables({"KIT_ZQXW": "1"}, KNOWN)


def test_known_variables_their_file_forms_and_foreign_ones_are_not_reported() -> None:
    """Known names, their *_FILE forms and variables of other programs pass silently."""
    env = {
        "DATABASE_HOST": "db",
        "DATABASE_PASSWORD_FILE": "/run/secrets/db_password",
        "SECRET_KEY_FILE": "/run/secrets/secret_key",
        "DATABASE_MAX_CONNECTIONS": "60",
        "KIT_REPLICAS": "3",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_CMD_ARGS": "--log-level debug",
        # The image's own, the engine's, and the compose file's deployment variables.
        "PATH": "/usr/bin",
        "HOSTNAME": "abc",
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "kitbuild_runtime.django_settings",
        "DJANGO_SECRET_KEY": "x",
        "PYTHONUNBUFFERED": "1",
        "APP_IMAGE": "mysite:latest",
        "DB_IMAGE": "kitbuild/mysql:latest",
        "WEB_CPUS": "1",
        "WEB_PORT": "8000",
        "PROXY_PORT": "8080",
        "SECRETS_DIR": "deploy/secrets/staging",
        "DEPLOY_ENV_FILE": "deploy/staging.env",
        "COMPOSE_PROFILES": "proxy",
        "COMPOSE_PROJECT_NAME": "mysite-staging",
    }

    assert [] == environment.unknown_variables(env, KNOWN)


def test_every_variable_the_runtime_reads_is_known() -> None:
    """The known list covers each kit-prefixed name the runtime files and the plan mention."""
    pattern = re.compile(r"\"((?:DATABASE|KIT|GUNICORN|TLS)_[A-Z_]+)\"")
    mentioned = {
        name
        for path in RUNTIME.glob("*.py")
        for name in pattern.findall(path.read_text())
        if not name.endswith("_")
    }

    assert set() == mentioned - KNOWN


def test_the_entrypoint_logs_one_json_warning_per_unknown_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At start the entrypoint prints a kitbuild.warning JSON line naming the closest variable."""
    entrypoint.warn_unknown_variables({"GUNICORN_TIMOUT": "30", "DATABASE_HOST": "db"})

    lines = capsys.readouterr().out.splitlines()
    assert 1 == len(lines)
    record = json.loads(lines[0])
    assert ("kitbuild.warning", "GUNICORN_TIMOUT", "GUNICORN_TIMEOUT") == (
        record["event"], record["variable"], record["closest"]
    )  # fmt: skip
    assert "did you mean GUNICORN_TIMEOUT?" in record["message"]
