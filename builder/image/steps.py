"""What the build does after the code is in, and the Debian packages the bases need for it.

:func:`plan_steps` decides the host's part of the build steps (collectstatic, compilemessages,
the project's commands, the build environment); whether to run ``manage.py compress`` is
decided inside the image, from the settings as the build sees them
(:mod:`kitbuild_runtime.buildsteps`). :func:`system_packages` says which Debian packages
go into each stage's base, on top of kitbuild's own.

compilemessages needs GNU gettext's ``msgfmt`` where it runs: in the steps stage, which
starts from the runtime base (so the steps see the libraries the app runs with), in the
same RUN as collectstatic. So a project with ``.po`` files gets ``gettext`` in its runtime
base; projects without none.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import PurePath
from typing import TYPE_CHECKING

from builder.image.project import SKIPPED_DIRS
from kitbuild_runtime.buildsteps import BUILD_FILES, plan_argument

if TYPE_CHECKING:
    from pathlib import Path

    from builder.image.config import KitConfig
    from builder.image.project import Project

#: The Debian package with msgfmt, which Django's compilemessages runs.
GETTEXT = "gettext"


@dataclasses.dataclass(frozen=True)
class BuildSteps:
    """The host's part of the build steps, rendered as one argument of the build's RUN."""

    collectstatic: bool
    compilemessages: bool
    commands: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    #: (source in the steps stage, destination) for each --build-file.
    files: tuple[tuple[str, str], ...] = ()

    def argument(self) -> str:
        """The JSON plan :mod:`kitbuild_runtime.buildsteps` reads (no newline in it)."""
        return plan_argument(
            self.collectstatic,
            self.compilemessages,
            list(self.commands),
            dict(self.env),
            list(self.files),
        )


@dataclasses.dataclass(frozen=True)
class SystemPackages:
    """Debian packages added to kitbuild's bases: for the build stage and for the runtime."""

    build: tuple[str, ...] = ()
    runtime: tuple[str, ...] = ()

    def by_kind(self) -> dict[str, tuple[str, ...]]:
        """The packages keyed by base kind, as :func:`builder.image.bases.ensure_suite` takes."""
        return {"build": self.build, "runtime": self.runtime}

    def __bool__(self) -> bool:
        """True when either stage needs a derived base."""
        return bool(self.build or self.runtime)


def has_translations(root: Path) -> bool:
    """The project has gettext catalogues where Django looks: ``<lang>/LC_MESSAGES/*.po``.

    Other ``.po`` files (a documentation's translations, say) do not make compilemessages
    run, nor do those in venvs and VCS data.
    """
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [name for name in dirnames if name not in SKIPPED_DIRS]
        if os.path.basename(directory) == "LC_MESSAGES" and any(
            name.endswith(".po") for name in filenames
        ):
            return True
    return False


def plan_steps(project: Project, config: KitConfig, *, translations: bool) -> BuildSteps:
    """Collectstatic as the config says (default: when STATIC_ROOT is set), then the rest."""
    collectstatic = project.static_root if config.collectstatic is None else config.collectstatic
    return BuildSteps(
        collectstatic=collectstatic,
        compilemessages=translations,
        commands=config.build_commands,
        env=config.build_env,
        files=tuple(
            (build_file_source(index, source), dest)
            for index, (source, dest) in enumerate(config.build_files)
        ),
    )


def build_file_source(index: int, source: str) -> str:
    """Where the steps stage holds the ``index``-th --build-file (its name kept, for errors)."""
    return f"{BUILD_FILES}/{index}/{PurePath(source).name}"


def system_packages(config: KitConfig, *, translations: bool) -> SystemPackages:
    """The config's packages, plus gettext in the runtime when compilemessages will run."""
    runtime = list(config.runtime_packages)
    if translations and GETTEXT not in runtime:
        runtime.append(GETTEXT)
    return SystemPackages(build=tuple(config.build_packages), runtime=tuple(runtime))
