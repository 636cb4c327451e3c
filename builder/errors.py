"""kitbuild's errors, all in one tree: each one's ``str()`` is the single line the user sees.

The root and the runtime's branch live in :mod:`kitbuild_runtime.errors` (it ships in every
image, so it is standard library only); the host's errors are defined here. The CLI catches
:class:`KitError`, prints ``kitbuild: error: <message>`` and exits 1::

    KitError                        a problem the user can fix
    ├── ConfigError (ValueError)    a value that cannot be used        kitbuild_runtime
    │   └── PlanError               an input the plan cannot work with kitbuild_runtime
    ├── StartError                  the container cannot start         kitbuild_runtime
    ├── SchemaTooOld                migrations unapplied too long      kitbuild_runtime
    ├── StepFailed                  a build step failed                kitbuild_runtime
    ├── UsageError                  a command line argparse rejected (exit 2)
    ├── BuildConfigError            [tool.kitbuild] or a build flag is unusable
    ├── ProjectError                not a Django project kitbuild can build
    ├── LockError                   a lock that cannot be installed for the image
    ├── ResolveError                a requirement cannot be fetched for the image
    ├── BaseImageError              a base image cannot be found or made
    ├── ServiceImageError           a service image cannot be made
    ├── TagError                    an image tag Docker would refuse
    ├── DeployError                 an env file that cannot be deployed
    ├── VerifyError                 a verify run cannot go on
    ├── ServerError                 the database server was lost or unreachable
    └── EngineError                 the Docker engine refused or failed a request
        ├── DockerUnavailable       the engine cannot be reached
        ├── BuildFailed             ``docker build`` stopped at a step
        └── Missing                 no such container, image or network
            └── ImageMissing        an image that should exist locally does not

    CorruptEntry (not a KitError)   a damaged cache entry; the cache drops it, never the user
"""

from kitbuild_runtime.errors import (
    ConfigError,
    KitError,
    PlanError,
    SchemaTooOld,
    StartError,
    StepFailed,
)

__all__ = [
    "BaseImageError",
    "BuildConfigError",
    "BuildFailed",
    "ConfigError",
    "CorruptEntry",
    "DeployError",
    "DockerUnavailable",
    "EngineError",
    "ImageMissing",
    "KitError",
    "LockError",
    "Missing",
    "PlanError",
    "ProjectError",
    "ResolveError",
    "SchemaTooOld",
    "ServerError",
    "ServiceImageError",
    "StartError",
    "StepFailed",
    "TagError",
    "UsageError",
    "VerifyError",
]


class UsageError(KitError):
    """A command line argparse rejected; the message is one line, and the exit code 2."""


class BuildConfigError(KitError):
    """The ``[tool.kitbuild]`` table or a build flag says something kitbuild cannot use."""


class ProjectError(KitError):
    """The directory is not a Django project kitbuild can build."""


class LockError(KitError):
    """A lock kitbuild cannot install for the image: unreadable, stale, or for another Python."""


class ResolveError(KitError):
    """A requirement cannot be fetched for the image's Python and platform."""


class BaseImageError(KitError):
    """A base image cannot be found or made."""


class ServiceImageError(KitError):
    """A service image cannot be made."""


class TagError(KitError):
    """An image tag Docker would refuse."""


class DeployError(KitError):
    """An env file that cannot be deployed; the message names the file and the variable."""


class VerifyError(KitError):
    """A verify run cannot go on; the message says what failed and what to do."""


class ServerError(KitError):
    """The server cannot be reached, or the session to it was lost."""


class EngineError(KitError):
    """The engine refused or failed a request; the message is its reason, on one line."""


class DockerUnavailable(EngineError):
    """The Docker engine cannot be reached."""


class BuildFailed(EngineError):
    """``docker build`` stopped at a step; the message names the step and the error."""


class Missing(EngineError):
    """The engine has no such container, image or network (any more)."""


class ImageMissing(Missing):
    """An image that should exist locally does not."""


class CorruptEntry(Exception):
    """A cache entry that must not be used (a read found it damaged or incomplete)."""
