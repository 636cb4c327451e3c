"""The build's steps after the code is in: collectstatic, compress, compilemessages, commands.

Image only: the Dockerfile's steps stage runs ``python -m kitbuild_runtime.buildsteps
PLAN`` as root in the project's directory, in the same RUN as compileall, with no network.
PLAN is one JSON object (see :func:`plan_argument`), so no value can break the line:

    {"collectstatic": bool, "compilemessages": bool, "commands": [str], "env": {str: str},
     "files": [[str, str]], "project_root": str, "outside": str}

``env`` is set for this process and the commands only, never as ENV in the image.
Settings modules often read secrets from the environment at import time; none exist at
build time, so this process alone gets throwaway values. Nothing here touches a database.
``files`` are (source, destination) pairs: each source (a --build-file, copied into the
steps stage) is put at its destination (relative to the project's directory, or
absolute) before the steps and taken away after them, whatever they did, so only the
steps' outputs reach the final image. The steps stage is not part of the final image.

A STATIC_ROOT outside ``project_root`` (``/Project/static``, ``/var/www/static``) is
mirrored, with its path, under ``outside``; the final stage copies that tree onto ``/``.

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
import shutil
import socket
import subprocess
import sys
import traceback
from typing import Any, Callable

from kitbuild_runtime.errors import StepFailed

#: The start of the line a failing step prints; kitbuild's build reads it back.
FAILED = "kitbuild: build step failed: "


#: Where the steps stage mirrors what the steps wrote outside the project's directory.
OUTSIDE = "/kitbuild-outside"
#: Where the steps stage holds the --build-file sources (never in the final image).
BUILD_FILES = "/kitbuild-build-files"
#: The project's root in the image.
PROJECT_ROOT = "/app"


def plan_argument(
    collectstatic: bool,
    compilemessages: bool,
    commands: list[str],
    env: dict[str, str],
    files: list[tuple[str, str]] | None = None,
) -> str:
    """The PLAN argument, as the host renders it into the Dockerfile."""
    plan = {
        "collectstatic": collectstatic,
        "compilemessages": compilemessages,
        "commands": list(commands),
        "env": dict(env),
        "files": [list(pair) for pair in files or []],
        "project_root": PROJECT_ROOT,
        "outside": OUTSIDE,
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


class PlacedFiles:
    """The --build-file files put where the project reads them, and taken away after.

    A destination the project already has (an example file, say) is put back as it was.
    Directories made for a destination are removed again when empty.
    """

    def __init__(self, pairs: list[list[str]]) -> None:
        """Remember the (source, destination) pairs; nothing is placed yet."""
        self._pairs = [(source, os.path.abspath(dest)) for source, dest in pairs]
        self._saved: dict[str, bytes] = {}
        self._made: list[str] = []

    def __enter__(self) -> PlacedFiles:
        """Put every file at its destination, keeping what was there."""
        for source, dest in self._pairs:
            if os.path.isfile(dest):
                with open(dest, "rb") as existing:
                    self._saved[dest] = existing.read()
            self._make_parents(os.path.dirname(dest))
            shutil.copyfile(source, dest)
        return self

    def _make_parents(self, directory: str) -> None:
        missing = []
        while not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        for path in reversed(missing):
            os.mkdir(path)
            self._made.append(path)

    def __exit__(self, *exc: object) -> None:
        """Take every file away again (or put the project's own back)."""
        for _, dest in self._pairs:
            if dest in self._saved:
                with open(dest, "wb") as restored:
                    restored.write(self._saved[dest])
            elif os.path.lexists(dest):
                os.remove(dest)
        for path in reversed(self._made):
            if os.path.isdir(path) and not os.listdir(path):
                os.rmdir(path)


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def mirror_outside(static_root: str | None, project_root: str, outside: str) -> str | None:
    """Copy a STATIC_ROOT outside the project under ``outside``, keeping its path.

    The mirror's directories above it take the owner and mode of the real ones, because
    the final stage's COPY of the tree onto ``/`` gives existing directories the
    mirror's (``/tmp`` must stay 1777). Returns the directory mirrored, if any.
    """
    os.makedirs(outside, exist_ok=True)
    if not static_root:
        return None
    root = os.path.realpath(static_root)
    if _inside(root, os.path.realpath(project_root)) or not os.path.isdir(root):
        return None
    parts = root.strip("/").split("/")
    for depth in range(1, len(parts)):
        real = "/" + "/".join(parts[:depth])
        mirror = os.path.join(outside, *parts[:depth])
        os.makedirs(mirror, exist_ok=True)
        info = os.stat(real)
        os.chmod(mirror, info.st_mode & 0o7777)
        os.chown(mirror, info.st_uid, info.st_gid)
    shutil.copytree(root, os.path.join(outside, *parts), symlinks=True, dirs_exist_ok=True)
    return root


def _static_root() -> str | None:
    from django.conf import settings  # noqa: PLC0415 - image only, after setup

    if not settings.configured:
        return None
    root = getattr(settings, "STATIC_ROOT", None)
    return os.fspath(root) if root else None


def _run_steps(plan: dict[str, Any]) -> int:
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


def resolve_own_hostname(hosts: str = "/etc/hosts") -> bool:
    """Make the build container's own name resolve, for settings that look it up.

    The steps run with no network, where ``gethostbyname(gethostname())`` (for
    ALLOWED_HOSTS, say) fails. As root in the steps stage, name it 127.0.1.1 as Debian
    does; /etc/hosts is the engine's, per container, and never part of a layer.
    Returns whether a line was added.
    """
    name = socket.gethostname()
    try:
        socket.gethostbyname(name)
        return False
    except OSError:
        pass
    try:
        with open(hosts, "a", encoding="utf-8") as handle:
            handle.write(f"127.0.1.1\t{name}\n")
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    """Run the plan's steps in order; stop at the first that fails, naming it."""
    plan = json.loads(argv[0]) if argv else {}
    resolve_own_hostname()
    plan.setdefault("collectstatic", False)
    plan.setdefault("compilemessages", False)
    plan.setdefault("commands", [])
    os.environ.update(plan.get("env", {}))
    with PlacedFiles(plan.get("files", [])):
        status = _run_steps(plan)
    if status != 0:
        return status
    outside = plan.get("outside", OUTSIDE)
    mirrored = mirror_outside(
        _static_root() if plan["collectstatic"] else None,
        plan.get("project_root", PROJECT_ROOT),
        outside,
    )
    if mirrored is not None:
        print(f"kitbuild: STATIC_ROOT {mirrored} is outside the project: kept there", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
