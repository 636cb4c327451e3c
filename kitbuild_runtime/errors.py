"""The runtime's errors: each one's ``str()`` is the single line the user sees.

This module ships in every image, so it stays standard library only. The host's errors
(:mod:`builder.errors`) grow from the same root, and the tree there draws both halves::

    KitError                      a problem the user can fix: one line, exit 1
    ├── ConfigError (ValueError)  a value that cannot be used (an env variable, a flag)
    │   └── PlanError             an input the plan cannot work with
    ├── StartError                why the container cannot start
    ├── SchemaTooOld              migrations still unapplied when the wait ran out
    └── StepFailed                a build step failed
"""


class KitError(Exception):
    """A problem the user can fix; the CLI and the entrypoint print it on one line, exit 1."""


class ConfigError(KitError, ValueError):
    """A value that cannot be used; ``str()`` is one line naming it and what is valid."""


class PlanError(ConfigError):
    """An input that cannot be planned with; ``str()`` is one line for the user."""


class StartError(KitError):
    """Why the container cannot start; one line."""


class SchemaTooOld(KitError):
    """The image's migrations were still unapplied when the wait ran out; one line."""


class StepFailed(KitError):
    """A build step failed; the message is the one line the user sees."""
