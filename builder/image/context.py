"""Render a complete, self-contained build context for a project.

The context holds everything ``docker build`` needs and nothing it must fetch:

    Dockerfile              rendered from images/app/Dockerfile.j2
    .dockerignore           images/app/dockerignore, plus the project's own patterns
    app/                    the project, without VCS data, secrets, venvs, local databases
    kitbuild/requirements.txt
    kitbuild/wheels/        the wheelhouse, fetched on the host
    kitbuild/tools/         the build stage's tools, fetched for the image's platform: uv's
                            wheel (the installer), cyclonedx-bom's wheels and sbom.py
    kitbuild/runtime/kitbuild_runtime/
                            the runtime package, copied as it is: the entrypoint and the plan
    build-files/<n>/<name>  the --build-file sources, for the steps stage only (present
                            when there are some)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import shlex
import shutil
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import kitbuild_runtime
from builder import __version__
from builder.image.config import KitConfig
from builder.image.steps import BuildSteps
from builder.templates import render_template
from kitbuild_runtime.buildsteps import BUILD_FILES, OUTSIDE

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from builder.image.created import Created
    from builder.image.project import Project

#: The fixed, non-root user the app runs as.
APP_UID = 10001
#: Where every image carries the CycloneDX JSON SBOM of its venv (label io.kitbuild.sbom).
SBOM_PATH = "/opt/venv/sbom.cdx.json"
#: Where the image carries the runtime package (on PYTHONPATH): in the venv, root's like it.
RUNTIME_PATH = "/opt/venv/kitbuild"
#: The build stage's tools (the installer, the SBOM tool and its script), beside the wheels.
TOOLS_FOLDER = "kitbuild/tools"

#: The context's folder of --build-file sources.
BUILD_FILES_FOLDER = "build-files"

_IMAGES = resources.files("builder.definitions")


@dataclasses.dataclass(frozen=True)
class ContextSpec:
    """Everything the Dockerfile template needs, decided before rendering."""

    project: Project
    build_image: str
    runtime_image: str
    requirements: Sequence[str]
    labels: Mapping[str, str]
    created: Created
    config: KitConfig = dataclasses.field(default_factory=KitConfig)
    #: What the build runs after the code is in (collectstatic, compilemessages, commands).
    steps: BuildSteps | None = None


def ignore_patterns(project_root: Path) -> list[str]:
    """The kit's always-ignored patterns, then the project's own .dockerignore, if any."""
    patterns = _pattern_lines(_IMAGES.joinpath("app/dockerignore").read_text())
    own = project_root / ".dockerignore"
    if own.is_file():
        patterns += _pattern_lines(own.read_text(encoding="utf-8", errors="replace"))
    return patterns


def _pattern_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _is_ignored(relative: str, patterns: Sequence[str]) -> bool:
    """Match a path (relative to the project) the way .dockerignore would, last rule winning."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/")
        name = relative.rsplit("/", 1)[-1]
        if body.startswith("**/"):
            matched = fnmatch.fnmatchcase(name, body[3:]) or fnmatch.fnmatchcase(relative, body)
        else:
            matched = fnmatch.fnmatchcase(relative, body) or relative.startswith(body + "/")
        if matched:
            ignored = not negate
    return ignored


def _under_app(pattern: str) -> str:
    """Re-anchor a project-relative ignore pattern below the context's app/ directory."""
    if pattern.startswith("!"):
        return "!app/" + pattern[1:].lstrip("/")
    return "app/" + pattern.lstrip("/")


def copy_project(root: Path, destination: Path, patterns: Sequence[str]) -> None:
    """Copy the project into ``destination``, leaving out what the patterns ignore."""

    def skip(directory: str, names: list[str]) -> set[str]:
        relative_dir = Path(directory).relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        return {name for name in names if _is_ignored(prefix + name, patterns)}

    shutil.copytree(root, destination, ignore=skip, symlinks=True)


def render_dockerfile(spec: ContextSpec) -> str:
    """Render images/app/Dockerfile.j2 for this project."""
    steps = spec.steps or BuildSteps(collectstatic=spec.project.static_root, compilemessages=False)
    return render_template(
        "app/Dockerfile.j2",
        kit_version=__version__,
        project=spec.project,
        build_image=spec.build_image,
        runtime_image=spec.runtime_image,
        uid=APP_UID,
        labels=spec.labels,
        build_steps=shlex.quote(steps.argument()),
        collects_static=steps.collectstatic,
        created=spec.created.timestamp,
        created_first=spec.created.from_source,
        sbom_path=SBOM_PATH,
        runtime_path=RUNTIME_PATH,
        build_files=bool(steps.files),
        build_files_folder=BUILD_FILES_FOLDER,
        build_files_path=BUILD_FILES,
        outside_path=OUTSIDE,
    )


def write_context(spec: ContextSpec, context: Path) -> None:
    """Write every file of the context except the wheelhouse into ``context``."""
    patterns = ignore_patterns(spec.project.root)
    copy_project(spec.project.root, context / "app", patterns)
    (context / "Dockerfile").write_text(render_dockerfile(spec))
    (context / ".dockerignore").write_text("".join(_under_app(p) + "\n" for p in patterns))
    kit = context / "kitbuild"
    kit.mkdir(parents=True, exist_ok=True)
    (kit / "requirements.txt").write_text("\n".join(spec.requirements) + "\n")
    copy_runtime(kit / "runtime")
    tools = context / TOOLS_FOLDER
    tools.mkdir(parents=True, exist_ok=True)
    (tools / "sbom.py").write_bytes(_IMAGES.joinpath("app/sbom.py").read_bytes())
    write_build_files(spec, context)


def write_build_files(spec: ContextSpec, context: Path) -> None:
    """Copy each --build-file source to where the steps stage's COPY takes it from."""
    if spec.steps is None:
        return
    for (host_source, _), (stage_source, _) in zip(
        spec.config.build_files, spec.steps.files, strict=True
    ):
        target = context / BUILD_FILES_FOLDER / PurePosixPath(stage_source).relative_to(BUILD_FILES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host_source, target)


def copy_runtime(destination: Path) -> None:
    """Copy the runtime package as it is: the image plans with the code `kitbuild plan` runs."""
    package = destination / kitbuild_runtime.__name__
    package.mkdir(parents=True)
    for item in resources.files(kitbuild_runtime).iterdir():
        if item.name.endswith(".py") or item.name == "py.typed":
            (package / item.name).write_bytes(item.read_bytes())
