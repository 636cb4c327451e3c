"""Whether the static files the build collected are where the settings look at run time.

A project may derive STATIC_ROOT from a variable (``DATA_DIR``, ``STATIC_ROOT`` itself)
that the build's ``--build-env`` and the container set differently. collectstatic then
wrote the files (and whatever build commands generated there) to one directory, and at
run time the settings name another, empty one: pages that read them, through
django-compressor or a static-files middleware, fail. Standard library only.
"""

from __future__ import annotations

import os

#: Set in the image's ENV when the build ran collectstatic (the Dockerfile template).
COLLECTED_VARIABLE = "KIT_STATIC_COLLECTED"


def problem(static_root: str | os.PathLike[str] | None, collected: bool) -> str | None:
    """One line saying what is wrong when the build collected but STATIC_ROOT holds nothing."""
    if not collected or not static_root:
        return None
    root = os.fspath(static_root)
    if os.path.isdir(root):
        with os.scandir(root) as entries:
            if any(entries):
                return None
    state = "an empty directory" if os.path.isdir(root) else "missing"
    return (
        f"STATIC_ROOT={root} is {state} in this container, but the build collected static "
        "files: a variable that decides STATIC_ROOT differs between the build (--build-env) "
        "and the container; give it the same value in both, or set STATIC_ROOT to where the "
        "build collected"
    )
