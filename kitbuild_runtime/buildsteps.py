"""The build's steps after the code is in: collectstatic, compress, compilemessages, commands.

Image only: the Dockerfile runs ``python -m kitbuild_runtime.buildsteps PLAN`` in the
project's directory, in the same RUN as compileall, with no network. PLAN is one JSON
object (see :func:`plan_argument`), so no value can break the Dockerfile's line:

    {"collectstatic": bool, "compilemessages": bool, "commands": [str], "env": {str: str}}

``env`` is set for this process and the commands only, never as ENV in the image.
Settings modules often read secrets from the environment at import time; none exist at
build time, so this process alone gets throwaway values. Nothing here touches a database.

Whether to run ``manage.py compress`` is decided here, from the settings as the build
sees them: django-compressor installed and ``COMPRESS_OFFLINE`` on. It runs with
``--force``, because COMPRESS_ENABLED defaults to ``not DEBUG`` and the image serves with
DEBUG off even when the settings default to it on: the offline manifest must be there.

A failing step prints one line starting with :data:`FAILED` naming it (after its own
output), and the process exits 1; the build reads that line to say which step failed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import traceback
from typing import Any, Callable

from kitbuild_runtime.errors import StepFailed

#: The start of the line a failing step prints; kitbuild's build reads it back.
FAILED = "kitbuild: build step failed: "


def plan_argument(
    collectstatic: bool, compilemessages: bool, commands: list[str], env: dict[str, str]
) -> str:
    """The PLAN argument, as the host renders it into the Dockerfile."""
    plan = {
        "collectstatic": collectstatic,
        "compilemessages": compilemessages,
        "commands": list(commands),
        "env": dict(env),
    }
    return json.dumps(plan, sort_keys=True, separators=(",", ":"))


def _django_setup() -> None:
    for name in ("SECRET_KEY", "DJANGO_SECRET_KEY"):
        os.environ.setdefault(name, secrets.token_urlsafe(50))
    os.environ.setdefault("DATABASE_URL", "mysql://build:build@127.0.0.1:3306/build")
    # The project's own settings: the overlay needs a database configuration; this does not.
    os.environ["DJANGO_SETTINGS_MODULE"] = os.environ["KIT_PROJECT_SETTINGS"]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import django  # noqa: PLC0415 - image only, after the environment is set

    django.setup()


def offline_compression() -> bool:
    """django-compressor is installed and in INSTALLED_APPS, with COMPRESS_OFFLINE on."""
    from django.apps import apps  # noqa: PLC0415 - image only

    if not apps.is_installed("compressor"):
        return False
    from compressor.conf import (  # type: ignore[import-not-found]  # noqa: PLC0415
        settings as compressor_settings,
    )

    return bool(getattr(compressor_settings, "COMPRESS_OFFLINE", False))


def _call(*args: str) -> Callable[[], None]:
    def run() -> None:
        from django.core.management import call_command  # noqa: PLC0415 - image only

        call_command(*args)

    return run


def _shell(command: str) -> Callable[[], None]:
    def run() -> None:
        code = subprocess.run(command, shell=True, check=False).returncode
        if code != 0:
            raise StepFailed(f"exit status {code}")

    return run


def steps(plan: dict[str, Any], compressor_installed: bool) -> list[Any]:
    """The (name, action) pairs to run, in order; Django is set up only when one needs it."""
    todo: list[Any] = []
    django_needed = plan["collectstatic"] or plan["compilemessages"] or compressor_installed
    if django_needed:
        todo.append(
            ("loading the settings " + os.environ.get("KIT_PROJECT_SETTINGS", "?"), _django_setup)
        )
    if plan["collectstatic"]:
        todo.append(("manage.py collectstatic", _call("collectstatic", "--noinput")))
    if compressor_installed:
        todo.append(("manage.py compress", _compress_if_offline))
    if plan["compilemessages"]:
        todo.append(("manage.py compilemessages", _call("compilemessages")))
    for command in plan["commands"]:
        todo.append((f"build command {command!r}", _shell(command)))
    return todo


def _compress_if_offline() -> None:
    if offline_compression():
        print("kitbuild: COMPRESS_OFFLINE is on: running manage.py compress", flush=True)
        _call("compress", "--force")()


def main(argv: list[str]) -> int:
    """Run the plan's steps in order; stop at the first that fails, naming it."""
    plan = json.loads(argv[0]) if argv else {}
    plan.setdefault("collectstatic", False)
    plan.setdefault("compilemessages", False)
    plan.setdefault("commands", [])
    os.environ.update(plan.get("env", {}))
    compressor_installed = importlib.util.find_spec("compressor") is not None
    for name, action in steps(plan, compressor_installed):
        try:
            action()
        except StepFailed as error:
            print(f"{FAILED}{name}: {error}", file=sys.stderr, flush=True)
            return 1
        # Whatever the project's code raises is the step's failure: show it, then name it.
        except BaseException as error:
            traceback.print_exc()
            last = (str(error).strip().splitlines() or [""])[-1]
            summary = f"{type(error).__name__}: {last}" if last else type(error).__name__
            print(f"{FAILED}{name}: {summary}", file=sys.stderr, flush=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
