"""The image's entrypoint: check the environment, wait for the database, plan, become gunicorn.

Commands (the container's arguments):
    (none) or serve   check, wait for the database and for the image's migrations to be
                      applied, plan, check the server's sessions against the budget, log
                      the plan as one JSON line, then exec gunicorn, which becomes PID 1
                      and handles SIGTERM gracefully
    plan              print the plan as JSON and exit (no database needed)
    migrate           wait for the database, run migrations once, exit
    check             wait for the database, run Django's deployment checks, exit
    healthcheck       exit 0 when the health endpoint answers 200 (the image's HEALTHCHECK)
    static DEST       copy the collected static files into DEST (a proxy's volume), exit
    anything else     exec'd as given, for debugging (e.g. `bash`, `python manage.py shell`)

Standard library only; the image runs it as ``python -m kitbuild_runtime``, with the
project's directory as the working directory (so first on ``sys.path``, as manage.py has).
It plans with :mod:`kitbuild_runtime.capacity`, the module `kitbuild plan` uses.
"""

from __future__ import annotations

import dataclasses
import json
import os
import runpy
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from kitbuild_runtime import (
    capacity,
    environment,
    events,
    overcommit,
    schema,
    settings_guard,
    staticroot,
)
from kitbuild_runtime.errors import ConfigError, SchemaTooOld, StartError

#: The gunicorn configuration file, beside this module.
GUNICORN_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gunicorn_config.py")

#: MySQL errors that waiting will not fix: bad credentials, unknown database.
FATAL_DB_ERRORS = {
    1044: "access denied to the database",
    1045: "the credentials were refused",
    1049: "the database does not exist",
}


def say(text: str) -> None:
    """One log line on stdout, for the container's log driver."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def check_environment() -> dict[str, Any]:
    """Read every setting once so a bad value stops the container now, naming it."""
    env = os.environ
    warn_unknown_variables(env)
    environment.port(env)
    environment.gunicorn_settings(env)
    environment.django_overrides(env)
    database = environment.database(env)
    environment.wait_timeout(env)
    environment.migration_wait_timeout(env)
    environment.overcommit_action(env)
    settings, _ = capacity.read_settings({}, env)
    if settings.max_connections is not None:
        compute_plan(None)  # a budget too small fails now, not after the database wait
    return database


def warn_unknown_variables(env: Mapping[str, str]) -> None:
    """A warning line for each variable that looks meant for the kit but is not one it reads."""
    known = environment.KNOWN_NAMES | {setting.env for setting in capacity.SETTINGS}
    for name, closest in environment.unknown_variables(env, known):
        hint = f"; did you mean {closest}?" if closest else ""
        message = f"{name} is not a variable kitbuild reads, so it has no effect{hint}"
        fields = {"message": message, "variable": name, "closest": closest}
        say(events.line(events.WARNING, fields))


@dataclasses.dataclass
class DatabaseFacts:
    """What the server said at start."""

    max_connections: int
    aliases: int


def wait_for_database(database: Mapping[str, Any], *, keep_open: bool = False) -> DatabaseFacts:
    """Authenticate and SELECT 1 until it works or DATABASE_WAIT_TIMEOUT passes.

    With ``keep_open`` the session that answered stays open for the caller to close.
    """
    import django  # noqa: PLC0415 - only commands that need the database load Django
    from django.db import OperationalError, connection  # noqa: PLC0415

    try:
        django.setup()
    # Anything the project's settings raise while Django loads them is the project's
    # problem: report it in one line, not as kitbuild's traceback.
    except Exception as error:
        if isinstance(error, ConfigError):
            raise
        raise StartError(
            f"the project's settings ({os.environ.get('KIT_PROJECT_SETTINGS')}) failed to "
            f"load: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    from django.conf import settings  # noqa: PLC0415

    timeout = environment.wait_timeout(os.environ)
    where = f"{database['HOST']}:{database['PORT']}/{database['NAME']}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.execute("SELECT @@max_connections")
                (max_connections,) = cursor.fetchone()
            if not keep_open:
                connection.close()  # nothing inherited across exec, nothing left open
            break
        except OperationalError as error:
            connection.close()  # the next attempt logs in afresh
            code = error.args[0] if error.args and isinstance(error.args[0], int) else None
            if code in FATAL_DB_ERRORS:
                raise StartError(
                    f"database {where}: {FATAL_DB_ERRORS[code]} (MySQL error {code}); "
                    "check DATABASE_USER, DATABASE_PASSWORD and DATABASE_NAME"
                ) from None
            if time.monotonic() >= deadline:
                raise StartError(
                    f"database {where} not reachable after {timeout} s "
                    f"(DATABASE_WAIT_TIMEOUT): {error.args[-1] if error.args else error}"
                ) from None
            time.sleep(1)
    return DatabaseFacts(int(max_connections), len(settings.DATABASES))


def compute_plan(facts: DatabaseFacts | None) -> capacity.Plan:
    """Plan from the cgroups and the environment, and from the server when it answered."""
    settings, sources = capacity.read_settings({}, os.environ)
    if facts is not None and settings.max_connections is None:
        settings = dataclasses.replace(settings, max_connections=facts.max_connections)
        sources["max_connections"] = (
            "the server's @@max_connections (DATABASE_MAX_CONNECTIONS unset)"
        )
    if facts is not None and "connections_per_thread" not in sources and facts.aliases > 1:
        # A thread holds one connection per alias it uses: count them all.
        settings = dataclasses.replace(settings, connections_per_thread=facts.aliases)
    return capacity.make_plan(settings, capacity.read_limits(), sources)


def wait_for_migrations() -> None:
    """Wait until none of the image's migrations is unapplied (KIT_MIGRATION_WAIT_TIMEOUT).

    Until then gunicorn has not started: the container listens on nothing and is not
    healthy, so no orchestrator sends it traffic against an older schema.
    """
    timeout = environment.migration_wait_timeout(os.environ)
    if timeout == 0:
        return
    from django.db import DatabaseError  # noqa: PLC0415 - Django is set up by now

    def report(pending: list[str]) -> None:
        fields = {"waiting": len(pending), "first": pending[0], "timeout": timeout}
        say(events.line(events.MIGRATIONS, fields))

    try:
        waited = schema.wait_until_migrated(timeout, report, transient=(DatabaseError,))
    except SchemaTooOld as error:
        raise StartError(str(error)) from None
    if waited > 0:
        say(events.line(events.MIGRATIONS, {"waiting": 0, "waited": round(waited, 1)}))


def check_overcommit(plan: capacity.Plan) -> None:
    """Warn (or, with KIT_OVERCOMMIT=refuse, stop) when the server holds more than planned."""
    from django.db import DatabaseError, connection  # noqa: PLC0415 - Django is set up by now

    try:
        with connection.cursor() as cursor:
            cursor.execute(overcommit.SESSIONS_QUERY)
            open_sessions, clients = cursor.fetchone()
    except DatabaseError as error:  # a check that cannot run must not stop the start
        say(events.line(events.WARNING, {"message": f"overcommit check skipped: {error}"}))
        return
    settings, _ = capacity.read_settings({}, os.environ)
    found = overcommit.assess(
        plan,
        overcommit.Sessions(int(open_sessions), int(clients)),
        settings.replicas,
        settings.surge,
    )
    if found is None:
        return
    if environment.overcommit_action(os.environ) == "refuse":
        raise StartError(f"{found.message} (KIT_OVERCOMMIT=refuse)")
    say(events.line(events.WARNING, found.fields()))


def check_static_root() -> None:
    """Warn when the build collected static files but STATIC_ROOT here holds none."""
    from django.conf import settings  # noqa: PLC0415 - Django is set up by now

    collected = os.environ.get(staticroot.COLLECTED_VARIABLE) == "1"
    found = staticroot.problem(getattr(settings, "STATIC_ROOT", None), collected)
    if found is not None:
        say(events.line(events.WARNING, {"message": found}))


def say_settings() -> None:
    """Log which project settings module the image serves its overlay of."""
    fields = {
        "module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "overlays": os.environ.get("KIT_PROJECT_SETTINGS", ""),
    }
    say(events.line(events.SETTINGS, fields))


def serve() -> int:
    """Check, wait for the server and the schema, plan, check the budget, become gunicorn."""
    # Settings that read sys.argv on import (`sys.argv[1] == "test"`) see what gunicorn's
    # workers will see, here too.
    argv = ["gunicorn", "--config", GUNICORN_CONFIG]
    sys.argv = list(argv)
    database = check_environment()
    # The session that answered stays open through the overcommit check, so replicas
    # that start together (a scale-out) see each other there.
    facts = wait_for_database(database, keep_open=True)
    from django.db import connection  # noqa: PLC0415 - Django is set up by now

    try:
        wait_for_migrations()
        plan = compute_plan(facts)
        check_overcommit(plan)
    finally:
        connection.close()
    if plan.max_connections != facts.max_connections:
        message = (
            f"DATABASE_MAX_CONNECTIONS={plan.max_connections} but the server allows "
            f"{facts.max_connections}: the plan may not match the server; set them alike"
        )
        say(events.line(events.WARNING, {"message": message}))
    check_static_root()
    say_settings()
    os.environ["KIT_WORKERS"] = str(plan.workers)
    os.environ["KIT_THREADS"] = str(plan.threads)
    os.environ["KIT_BIND"] = f"0.0.0.0:{environment.port(os.environ)}"
    say(events.PlanRecord(plan, facts.max_connections).to_line())
    os.execvp(argv[0], argv)
    return 0  # not reached


def healthcheck() -> int:
    """Exit 0 when the health endpoint answers 200."""
    path = environment.health_path(os.environ)
    url = f"http://127.0.0.1:{environment.port(os.environ)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        sys.stderr.write(f"kitbuild: unhealthy: {url}: {error}\n")
        return 1


def manage(*args: str) -> int:
    """Wait for the database, then run manage.py with these arguments, in this process.

    In this process, not exec'd: Django's settings are configured by then (the overlay),
    so a manage.py that assigns DJANGO_SETTINGS_MODULE cannot swap them for its own.
    """
    # Settings may read sys.argv on import: they see manage.py's, as with manage.py itself.
    sys.argv = ["manage.py", *args]
    wait_for_database(check_environment())
    overlay = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    try:
        runpy.run_path("manage.py", run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        settings_guard.restore(overlay, "manage.py")
    return 0


def publish_static(argv: list[str]) -> int:
    """Copy the collected static files (STATIC_ROOT) into a directory, dropping stale ones.

    The compose file's proxy serves them from a volume this fills on every `up`, so a new
    image's files replace the old image's instead of hiding behind a populated volume.
    """
    if len(argv) != 1:
        raise StartError("usage: static DEST (the directory to copy STATIC_ROOT into)")
    dest = argv[0]
    from django.conf import settings  # noqa: PLC0415 - reads the settings, no setup needed

    root = str(getattr(settings, "STATIC_ROOT", None) or "")
    if not root or not os.path.isdir(root):
        raise StartError("the project has no collected static files (STATIC_ROOT is not set)")
    import shutil  # noqa: PLC0415

    wanted = {
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    }
    removed = 0
    try:
        shutil.copytree(root, dest, dirs_exist_ok=True)
        for folder, _, names in os.walk(dest, topdown=False):
            for name in names:
                if os.path.relpath(os.path.join(folder, name), dest) not in wanted:
                    os.remove(os.path.join(folder, name))
                    removed += 1
            if folder != dest and not os.listdir(folder):
                os.rmdir(folder)
    except OSError as error:
        raise StartError(f"cannot copy {root} to {dest}: {error}") from None
    say(
        events.line(
            events.STATIC, {"from": root, "to": dest, "files": len(wanted), "removed": removed}
        )
    )
    return 0


def run(argv: list[str]) -> int:  # noqa: PLR0911 - one return per command
    """Dispatch the container's command."""
    command = argv[0] if argv else "serve"
    if command == "serve":
        return serve()
    if command == "plan":
        sys.stdout.write(json.dumps(compute_plan(None).as_dict(), indent=2) + "\n")
        return 0
    if command == "healthcheck":
        return healthcheck()
    if command == "migrate":
        return manage("migrate", "--noinput", *argv[1:])
    if command == "check":
        return manage("check", "--deploy", *argv[1:])
    if command == "static":
        return publish_static(argv[1:])
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        raise StartError(f"cannot run {argv[0]!r}: {error.strerror}") from None
    return 0  # not reached


def main(argv: list[str]) -> int:
    """Run the command; any problem is one line on stderr and exit code 1."""
    try:
        return run(argv)
    except (ConfigError, StartError) as error:
        sys.stderr.write(f"kitbuild: error: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
