"""Read the container's environment into Django and gunicorn settings, or say what is wrong.

Standard library only. The entrypoint calls every reader once at start, so a bad value
stops the container at once with one line naming the variable; the settings overlay and
the gunicorn configuration call the same readers again, knowing they will succeed.
Every secret-carrying variable also has a ``*_FILE`` form (Docker and compose secrets).
Values are parsed by :mod:`kitbuild_runtime.values`, as ``kitbuild plan`` parses its own.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from kitbuild_runtime import values
from kitbuild_runtime.errors import ConfigError

__all__ = ["ConfigError"]


def value(env: Mapping[str, str], name: str) -> str | None:
    """``name`` from the environment, or the contents of the file ``name_FILE`` points at."""
    path = env.get(f"{name}_FILE", "").strip()
    if path:
        if env.get(name):
            raise ConfigError(f"{name} and {name}_FILE are both set: keep one")
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        except OSError as error:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read: {error.strerror}") from None
    text = env.get(name)
    return text if text else None


def whole(
    env: Mapping[str, str], name: str, default: int, low: int, high: int, *, meaning: str
) -> int:
    """A whole number from ``name`` within [low, high], or the default when unset."""
    text = value(env, name)
    return default if text is None else values.whole(name, text, low, high, meaning)


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no switch from ``name``."""
    text = value(env, name)
    return default if text is None else values.switch(name, text)


def listing(env: Mapping[str, str], name: str) -> list[str] | None:
    """A comma-separated list from ``name``, or None when unset."""
    text = value(env, name)
    return None if text is None else values.listing(text)


# ----------------------------------------------------------------------------- database

#: The port a MySQL server listens on unless DATABASE_PORT (or DATABASE_URL) says otherwise.
MYSQL_PORT = 3306


def database_port(env: Mapping[str, str]) -> int:
    """DATABASE_PORT: the server's port, MySQL's own when unset."""
    return whole(env, "DATABASE_PORT", MYSQL_PORT, 1, 65535, meaning="the server's port")


def database(env: Mapping[str, str]) -> dict[str, Any]:
    """Django's DATABASES["default"] from DATABASE_URL or the DATABASE_HOST family."""
    url = value(env, "DATABASE_URL")
    if url is not None:
        fields = _parse_url(url)
    elif value(env, "DATABASE_HOST") is not None:
        fields = {
            "HOST": value(env, "DATABASE_HOST"),
            "PORT": database_port(env),
            "NAME": value(env, "DATABASE_NAME"),
            "USER": value(env, "DATABASE_USER"),
            "PASSWORD": value(env, "DATABASE_PASSWORD") or "",
        }
        for key in ("NAME", "USER"):
            if not fields[key]:
                raise ConfigError(f"DATABASE_HOST is set but DATABASE_{key} is not: set both")
    else:
        raise ConfigError(
            "no database configured: set DATABASE_URL (mysql://USER:PASSWORD@HOST:3306/NAME) "
            "or DATABASE_HOST, DATABASE_NAME, DATABASE_USER and DATABASE_PASSWORD"
        )
    return {
        "ENGINE": "django.db.backends.mysql",
        **fields,
        # Persistent per-thread connections, checked before reuse: at most one per thread
        # per alias, which the capacity plan counts.
        "CONN_MAX_AGE": whole(
            env, "DATABASE_CONN_MAX_AGE", 300, 0, 86400, meaning="seconds a connection is kept"
        ),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"charset": "utf8mb4", "connect_timeout": 5},
    }


def _parse_url(url: str) -> dict[str, Any]:
    hint = "DATABASE_URL must look like mysql://USER:PASSWORD@HOST:3306/NAME"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or MYSQL_PORT
    except ValueError:
        raise ConfigError(f"{hint} (the port is not a number from 1 to 65535)") from None
    if parts.scheme not in {"mysql", "mariadb"}:
        raise ConfigError(f"{hint} (scheme {parts.scheme or 'missing'!r} is not mysql)")
    name = urllib.parse.unquote(parts.path.lstrip("/"))
    if not parts.hostname or not name or not parts.username:
        raise ConfigError(f"{hint} (host, user or database name missing)")
    return {
        "HOST": parts.hostname,
        "PORT": port,
        "NAME": name,
        "USER": urllib.parse.unquote(parts.username),
        "PASSWORD": urllib.parse.unquote(parts.password or ""),
    }


def wait_timeout(env: Mapping[str, str]) -> int:
    """Seconds to wait for the database at start."""
    return whole(
        env, "DATABASE_WAIT_TIMEOUT", 60, 0, 3600, meaning="seconds to wait for the database"
    )


def migration_wait_timeout(env: Mapping[str, str]) -> int:
    """Seconds ``serve`` waits for the image's migrations to be applied; 0 does not wait."""
    return whole(
        env,
        "KIT_MIGRATION_WAIT_TIMEOUT",
        300,
        0,
        86400,
        meaning="seconds to wait for this image's migrations, 0 not to wait",
    )


#: What a replica does when the server already holds more than the plan leaves room for.
OVERCOMMIT_ACTIONS = ("warn", "refuse")


def overcommit_action(env: Mapping[str, str]) -> str:
    """KIT_OVERCOMMIT: ``warn`` (log and serve, the default) or ``refuse`` (exit 1)."""
    text = (value(env, "KIT_OVERCOMMIT") or "warn").strip().lower()
    if text not in OVERCOMMIT_ACTIONS:
        raise ConfigError(
            f"KIT_OVERCOMMIT={text!r} is not an action: use warn (log and serve) or refuse "
            "(exit when more containers run than the plan counts)"
        )
    return text


# ------------------------------------------------------------------------------ django


def django_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Settings the environment sets over the project's own (unset ones are left alone)."""
    overrides: dict[str, Any] = {"DEBUG": flag(env, "DEBUG", False)}
    secret = value(env, "SECRET_KEY")
    if secret is not None:
        if len(secret) < 32:
            raise ConfigError("SECRET_KEY is shorter than 32 characters: use a long random value")
        overrides["SECRET_KEY"] = secret
    for name in ("ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS"):
        items = listing(env, name)
        if items is not None:
            overrides[name] = items
    header = proxy_ssl_header(env)
    if header is not None:
        overrides["SECURE_PROXY_SSL_HEADER"] = header
    return overrides


def proxy_ssl_header(env: Mapping[str, str]) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER as ``HEADER,VALUE`` (e.g. HTTP_X_FORWARDED_PROTO,https).

    Only for a proxy that always sets (or strips) that header: a client reaching gunicorn
    directly could send it and make plain http count as https.
    """
    text = value(env, "SECURE_PROXY_SSL_HEADER")
    if text is None:
        return None
    header, sep, wanted = (part.strip() for part in text.partition(","))
    if not sep or not header or not wanted or "," in wanted:
        raise ConfigError(
            f"SECURE_PROXY_SSL_HEADER={text!r} must be HEADER,VALUE, "
            "e.g. HTTP_X_FORWARDED_PROTO,https"
        )
    if not header.startswith("HTTP_"):
        raise ConfigError(
            f"SECURE_PROXY_SSL_HEADER={text!r}: Django names the header as in request.META, "
            f"e.g. HTTP_X_FORWARDED_PROTO for X-Forwarded-Proto (write HTTP_{_meta(header)})"
        )
    return header, wanted


def _meta(header: str) -> str:
    return header.upper().replace("-", "_")


# ---------------------------------------------------------------------------- gunicorn


def port(env: Mapping[str, str]) -> int:
    """The port gunicorn listens on."""
    return whole(env, "PORT", 8000, 1, 65535, meaning="the port gunicorn listens on")


def graceful_timeout(env: Mapping[str, str]) -> int:
    """GUNICORN_GRACEFUL_TIMEOUT: seconds a stopping worker has to finish its requests."""
    return whole(
        env,
        "GUNICORN_GRACEFUL_TIMEOUT",
        60,
        1,
        3600,
        meaning="seconds a stopping worker finishes its requests",
    )


#: The paths the WSGI callable answers itself (wsgi.py): readiness (a SELECT 1 through the
#: database) and liveness (the process only). KIT_HEALTH_PATH and KIT_LIVE_PATH move them.
HEALTH_PATH = "/healthz"
LIVE_PATH = "/livez"


def health_path(env: Mapping[str, str]) -> str:
    """KIT_HEALTH_PATH: the path that answers 200 while the database does (readiness)."""
    return value(env, "KIT_HEALTH_PATH") or HEALTH_PATH


def live_path(env: Mapping[str, str]) -> str:
    """KIT_LIVE_PATH: the path that answers 200 while a worker can serve (liveness)."""
    return value(env, "KIT_LIVE_PATH") or LIVE_PATH


def gunicorn_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The seed's gunicorn settings, each overridable by a GUNICORN_* variable."""
    timeout = whole(env, "GUNICORN_TIMEOUT", 60, 1, 3600, meaning="seconds")
    settings: dict[str, Any] = {
        "backlog": whole(env, "GUNICORN_BACKLOG", 2048, 1, 65535, meaning="queued connections"),
        "timeout": timeout,
        "graceful_timeout": graceful_timeout(env),
        "keepalive": whole(env, "GUNICORN_KEEPALIVE", 30, 0, 3600, meaning="seconds"),
        "max_requests": whole(
            env,
            "GUNICORN_MAX_REQUESTS",
            0,
            0,
            10_000_000,
            meaning="requests before a restart, 0 never",
        ),
        "max_requests_jitter": whole(
            env, "GUNICORN_MAX_REQUESTS_JITTER", 0, 0, 10_000_000, meaning="requests"
        ),
        "access_log_format": value(env, "GUNICORN_ACCESS_LOG_FORMAT")
        or '%(t)s %(h)s "%(r)s" %(s)s %(b)s "%(f)s" "%(l)s"',
    }
    cert, key = value(env, "TLS_CERT_PATH"), value(env, "TLS_KEY_PATH")
    if (cert is None) != (key is None):
        missing = "TLS_KEY_PATH" if key is None else "TLS_CERT_PATH"
        raise ConfigError(f"TLS needs both TLS_CERT_PATH and TLS_KEY_PATH: {missing} is not set")
    if cert is not None and key is not None:
        for name, path in (("TLS_CERT_PATH", cert), ("TLS_KEY_PATH", key)):
            if not os.access(path, os.R_OK):
                raise ConfigError(f"{name}={path!r} is not a readable file: mount it read-only")
        settings.update(certfile=cert, keyfile=key)
    return settings


# ------------------------------------------------------------------- unknown variables

#: Prefixes of the variables the kit reads: one that starts so and is not known is a typo.
KIT_PREFIXES = ("DATABASE_", "KIT_", "GUNICORN_", "TLS_")

#: Every variable the image reads, besides the capacity plan's own (capacity.SETTINGS).
KNOWN_NAMES = frozenset(
    {
        "DATABASE_URL",
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "DATABASE_USER",
        "DATABASE_PASSWORD",
        "DATABASE_CONN_MAX_AGE",
        "DATABASE_WAIT_TIMEOUT",
        "KIT_MIGRATION_WAIT_TIMEOUT",
        "KIT_OVERCOMMIT",
        "KIT_STATIC_COLLECTED",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SECURE_PROXY_SSL_HEADER",
        "DEBUG",
        "PORT",
        "GUNICORN_TIMEOUT",
        "GUNICORN_GRACEFUL_TIMEOUT",
        "GUNICORN_KEEPALIVE",
        "GUNICORN_BACKLOG",
        "GUNICORN_MAX_REQUESTS",
        "GUNICORN_MAX_REQUESTS_JITTER",
        "GUNICORN_ACCESS_LOG_FORMAT",
        "GUNICORN_CMD_ARGS",
        "TLS_CERT_PATH",
        "TLS_KEY_PATH",
        "KIT_HEALTH_PATH",
        "KIT_LIVE_PATH",
        # Set by the image (Dockerfile ENV) or by the entrypoint for gunicorn.
        "KIT_PROJECT_SETTINGS",
        "KIT_WSGI_APPLICATION",
        "KIT_PROJECT_NAME",
        "KIT_WORKERS",
        "KIT_THREADS",
        "KIT_BIND",
    }
)

#: How alike a name without a kit prefix must be to a known one to count as its misspelling
#: (difflib's ratio): ALLOWED_HOST for ALLOWED_HOSTS, not HOSTNAME for PORT.
UNPREFIXED_CUTOFF = 0.85


def unknown_variables(
    env: Mapping[str, str], known: frozenset[str]
) -> list[tuple[str, str | None]]:
    """Variables that look meant for the kit but that it does not read, with the closest name.

    A name counts when it starts with a kit prefix (DATABASE_, KIT_, GUNICORN_, TLS_) and is
    not known, or when it has no such prefix but is nearly a known name (SECRET_KY). ``*_FILE``
    is known whenever its base name is. Each comes with difflib's closest known name, or None.
    """
    import difflib  # noqa: PLC0415 - only this check needs it

    names = sorted(known | {f"{name}_FILE" for name in known})
    plain = [name for name in names if not name.startswith(KIT_PREFIXES)]
    found: list[tuple[str, str | None]] = []
    for name in sorted(env):
        if name in known or (name.endswith("_FILE") and name[: -len("_FILE")] in known):
            continue
        if name.startswith(KIT_PREFIXES):
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            found.append((name, close[0] if close else None))
        else:
            close = difflib.get_close_matches(name, plain, n=1, cutoff=UNPREFIXED_CUTOFF)
            if close:
                found.append((name, close[0]))
    return found
