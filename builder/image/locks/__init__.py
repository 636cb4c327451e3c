"""The formats a project's dependencies are written in, one module each, behind one protocol.

:class:`~builder.image.locks.format.DependencyFormat` says what a format is found by, the
manifest it pairs with, the Python it allows, the packages it declares and the exact pins
it selects for the image's Python. :mod:`builder.image.dependencies` finds the files and
holds the order of preference (its ``FORMATS``); the modules here only parse:

    format        the protocol, what a format reads a project into, LockFile and helpers
    pins          Pin, PackageIndex and Target, and the checks every lock makes of its pins
    sources       VCS and archive references and the indexes a project names
    uv            uv.lock
    poetry        poetry.lock, and Poetry's tables in pyproject.toml
    pipenv        Pipfile.lock
    pylock        pylock.toml (PEP 751)
    requirements  requirements files: resolved, or a lock when every line is hashed
    pyproject     pyproject.toml's dependencies without a lock, resolved

A lock is read for the TARGET (the image's Python), never re-resolved: every package whose
markers hold for it, at its locked version and with its locked hashes.
"""

from builder.image.locks.pins import PackageIndex, Pin, Target

__all__ = ["PackageIndex", "Pin", "Target"]
