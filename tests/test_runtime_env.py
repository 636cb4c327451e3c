"""The image's environment readers (kitbuild_runtime/environment.py), run on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from kitbuild_runtime import environment
from kitbuild_runtime.errors import ConfigError

DB = {"DATABASE_HOST": "db", "DATABASE_NAME": "site", "DATABASE_USER": "app"}


def test_database_from_host_variables() -> None:
    """DATABASE_HOST and friends give a MySQL alias with persistent, checked connections."""
    config = environment.database({**DB, "DATABASE_PASSWORD": "pw", "DATABASE_PORT": "3307"})

    assert ("db", 3307, "site", "app", "pw") == (
        config["HOST"], config["PORT"], config["NAME"], config["USER"], config["PASSWORD"]
    )  # fmt: skip
    assert "django.db.backends.mysql" == config["ENGINE"]
    assert (300, True) == (config["CONN_MAX_AGE"], config["CONN_HEALTH_CHECKS"])


def test_database_from_url_with_escaped_password() -> None:
    """DATABASE_URL is parsed, with percent-escapes in the password undone."""
    config = environment.database({"DATABASE_URL": "mysql://app:p%40ss@db.internal:3310/site"})

    assert ("db.internal", 3310, "site", "app", "p@ss") == (
        config["HOST"], config["PORT"], config["NAME"], config["USER"], config["PASSWORD"]
    )  # fmt: skip


def test_file_variant_reads_a_secret(tmp_path: Path) -> None:
    """DATABASE_PASSWORD_FILE supplies the password from a mounted secret, newline trimmed."""
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")

    assert (
        "s3cret" == environment.database({**DB, "DATABASE_PASSWORD_FILE": str(secret)})["PASSWORD"]
    )


def test_overrides_default_debug_off_and_lists() -> None:
    """DEBUG is off unless asked; hosts and origins are comma lists; unset ones stay out."""
    overrides = environment.django_overrides(
        {"ALLOWED_HOSTS": "a.example, b.example", "SECRET_KEY": "x" * 40}
    )

    expected = {"DEBUG": False, "ALLOWED_HOSTS": ["a.example", "b.example"], "SECRET_KEY": "x" * 40}
    assert expected == overrides


def test_gunicorn_defaults_are_the_seeds() -> None:
    """Backlog 2048, timeouts 60/60, keepalive 30, the seed's access-log format."""
    settings = environment.gunicorn_settings({})

    assert (2048, 60, 60, 30, 0) == (
        settings["backlog"], settings["timeout"], settings["graceful_timeout"],
        settings["keepalive"], settings["max_requests"],
    )  # fmt: skip
    assert '%(t)s %(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(l)s"' == settings["access_log_format"]


def test_tls_with_both_files(tmp_path: Path) -> None:
    """TLS_CERT_PATH and TLS_KEY_PATH together turn TLS on."""
    (tmp_path / "c").write_text("cert")
    (tmp_path / "k").write_text("key")
    settings = environment.gunicorn_settings(
        {"TLS_CERT_PATH": str(tmp_path / "c"), "TLS_KEY_PATH": str(tmp_path / "k")}
    )

    assert (str(tmp_path / "c"), str(tmp_path / "k")) == (settings["certfile"], settings["keyfile"])


BAD = [
    ("database", {}, "no database configured"),
    ("database", {"DATABASE_URL": "not a url"}, "DATABASE_URL must look like mysql://"),
    ("database", {"DATABASE_URL": "postgres://u:p@h/db"}, "scheme 'postgres' is not mysql"),
    ("database", {"DATABASE_URL": "mysql://u:p@h:99999/db"}, "port is not a number"),
    ("database", {"DATABASE_URL": "mysql://u:p@h:3306/"}, "host, user or database name missing"),
    ("database", {"DATABASE_URL": "mysql://h/db"}, "host, user or database name missing"),
    ("database", {"DATABASE_HOST": "db", "DATABASE_USER": "u"}, "DATABASE_NAME is not"),
    ("database", {"DATABASE_HOST": "db", "DATABASE_NAME": "n"}, "DATABASE_USER is not"),
    ("database", {**DB, "DATABASE_PORT": "http"}, "DATABASE_PORT='http' is not a whole number"),
    ("database", {**DB, "DATABASE_PORT": "0"}, "DATABASE_PORT='0' is out of range"),
    ("database", {**DB, "DATABASE_CONN_MAX_AGE": "-1"}, "DATABASE_CONN_MAX_AGE='-1'"),
    ("database", {**DB, "DATABASE_PASSWORD_FILE": "/nonexistent/pw"}, "cannot be read"),
    (
        "database",
        {**DB, "DATABASE_PASSWORD": "a", "DATABASE_PASSWORD_FILE": "/x"},
        "DATABASE_PASSWORD and DATABASE_PASSWORD_FILE are both set",
    ),
    ("django_overrides", {"DEBUG": "maybe"}, "DEBUG='maybe' is not a switch: use true or false"),
    ("django_overrides", {"SECRET_KEY": "short"}, "SECRET_KEY is shorter than 32"),
    ("django_overrides", {"SECRET_KEY_FILE": "/nonexistent"}, "SECRET_KEY_FILE='/nonexistent'"),
    (
        "port",
        {"PORT": "99999"},
        "PORT='99999' is out of range: the port gunicorn listens on, 1 to 65535",
    ),
    ("port", {"PORT": "eighty"}, "PORT='eighty'"),
    ("gunicorn_settings", {"GUNICORN_TIMEOUT": "0"}, "GUNICORN_TIMEOUT='0'"),
    ("gunicorn_settings", {"GUNICORN_BACKLOG": "x"}, "GUNICORN_BACKLOG='x'"),
    ("gunicorn_settings", {"GUNICORN_MAX_REQUESTS": "-5"}, "GUNICORN_MAX_REQUESTS='-5'"),
    ("gunicorn_settings", {"TLS_CERT_PATH": "/c"}, "TLS_KEY_PATH is not set"),
    ("gunicorn_settings", {"TLS_KEY_PATH": "/k"}, "TLS_CERT_PATH is not set"),
    (
        "gunicorn_settings",
        {"TLS_CERT_PATH": "/nonexistent/c", "TLS_KEY_PATH": "/nonexistent/k"},
        "TLS_CERT_PATH='/nonexistent/c' is not a readable file",
    ),
    ("wait_timeout", {"DATABASE_WAIT_TIMEOUT": "soon"}, "DATABASE_WAIT_TIMEOUT='soon'"),
    (
        "django_overrides",
        {"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"},
        "SECURE_PROXY_SSL_HEADER='HTTP_X_FORWARDED_PROTO' must be HEADER,VALUE",
    ),
    (
        "django_overrides",
        {"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https"},
        "write HTTP_X_FORWARDED_PROTO",
    ),
]


@pytest.mark.parametrize(("reader", "env", "message"), BAD)
def test_bad_variables_give_one_line_naming_them(
    reader: str, env: dict[str, str], message: str
) -> None:
    """Each bad variable raises ConfigError: one line naming it and what would be valid."""
    with pytest.raises(ConfigError) as error:
        getattr(environment, reader)(env)

    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_proxy_ssl_header_is_a_pair_and_empty_leaves_it_unset() -> None:
    """HEADER,VALUE becomes Django's (header, value) tuple; an empty value sets nothing."""
    given = environment.django_overrides(
        {"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https"}
    )
    empty = environment.django_overrides({"SECURE_PROXY_SSL_HEADER": ""})

    assert ("HTTP_X_FORWARDED_PROTO", "https") == given["SECURE_PROXY_SSL_HEADER"]
    assert "SECURE_PROXY_SSL_HEADER" not in empty
