"""The image's entrypoint: plan from the container's limits, then become gunicorn.

Commands (the container's arguments):
    (none) or serve   plan, log the plan as one JSON line, exec gunicorn (PID 1)
    plan              print the plan as JSON and exit
    migrate           run Django's migrations once and exit
    check             run Django's deployment checks and exit
    healthcheck       GET the health endpoint on this container; exit 0 when it answers 200
    anything else     exec'd as given, for debugging (e.g. `bash`, `python manage.py shell`)

Standard library only, next to capacity.py (copied from kitbuild, one source of truth).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import capacity  # noqa: E402 - found beside this file, whatever the working directory

KIT_DIR = os.path.dirname(os.path.abspath(__file__))


def fail(message: str) -> int:
    """Print one line for the operator and return the exit code."""
    sys.stderr.write(f"kitbuild: error: {message}\n")
    return 1


def compute_plan() -> capacity.Plan:
    """Plan from this container's cgroups and environment (no flags inside images)."""
    settings, sources = capacity.read_settings({}, os.environ)
    return capacity.make_plan(settings, capacity.read_limits(), sources)


def port() -> int:
    """The port gunicorn listens on, from PORT."""
    text = os.environ.get("PORT", "8000").strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise capacity.PlanError(f"PORT={text!r} is not a TCP port: use 1 to 65535")
    return int(text)


def gunicorn_argv(plan: capacity.Plan) -> list[str]:
    """gunicorn's command line; everything else is in gunicorn_conf.py."""
    return ["gunicorn", "--config", os.path.join(KIT_DIR, "gunicorn_conf.py")]


def serve() -> int:
    """Log the plan, then replace this process with gunicorn."""
    plan = compute_plan()
    os.environ["KIT_WORKERS"] = str(plan.workers)
    os.environ["KIT_THREADS"] = str(plan.threads)
    os.environ["KIT_BIND"] = f"0.0.0.0:{port()}"
    record = {"event": "kitbuild.plan", **plan.as_dict()}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    argv = gunicorn_argv(plan)
    os.execvp(argv[0], argv)
    return 0  # not reached


def healthcheck() -> int:
    """Exit 0 when the health endpoint answers 200 (used by the image's HEALTHCHECK)."""
    path = os.environ.get("KIT_HEALTH_PATH", "/healthz")
    url = f"http://127.0.0.1:{port()}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - loopback only
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        sys.stderr.write(f"kitbuild: unhealthy: {url}: {error}\n")
        return 1


def manage(*args: str) -> int:
    """Exec manage.py with these arguments, in the project's directory."""
    argv = [sys.executable, "manage.py", *args]
    os.execvp(argv[0], argv)
    return 0  # not reached


def main(argv: list[str]) -> int:
    """Dispatch the container's command."""
    command = argv[0] if argv else "serve"
    try:
        if command == "serve":
            return serve()
        if command == "plan":
            sys.stdout.write(json.dumps(compute_plan().as_dict(), indent=2) + "\n")
            return 0
        if command == "healthcheck":
            return healthcheck()
        if command == "migrate":
            return manage("migrate", "--noinput", *argv[1:])
        if command == "check":
            return manage("check", "--deploy", *argv[1:])
    except capacity.PlanError as error:
        return fail(str(error))
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        return fail(f"cannot run {argv[0]!r}: {error.strerror}")
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
