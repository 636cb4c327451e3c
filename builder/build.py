"""Build an image of a Django project: inspect, fetch, render, deliver.

Each stage has a small contract. :func:`build_project` wires them; the CLI chooses the
delivery: :class:`DockerBuild` builds the context with the engine, :class:`RenderOnly`
writes it to a directory and builds nothing (the dry run).
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from builder import __version__, base, render, wheelhouse
from builder.errors import KitError
from builder.project import Project, inspect_project

if TYPE_CHECKING:
    from collections.abc import Callable

    from builder.docker_gateway import DockerGateway

#: Added when the project does not bring its own (Django's documented MySQL driver; it
#: is compiled in the build stage, so the runtime image carries only its 0.6 MB library).
GUNICORN_REQUIREMENT = "gunicorn>=23,<28"
MYSQL_DRIVER_REQUIREMENT = "mysqlclient>=2.2.1,<3"
#: Lets gunicorn name its processes gunicorn_<project> (the seed's proc_name) in ps and top.
PROCESS_TITLE_REQUIREMENT = "setproctitle>=1.3,<2"

_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?"  # optional registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


class TagError(KitError):
    """An image tag Docker would refuse."""


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What the user asked for."""

    project_dir: Path
    tag: str | None = None
    settings: str | None = None
    requirements: Path | None = None
    base_image: str | None = None


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a delivery produced: an image, or a context on disk."""

    tag: str
    image_id: str | None = None
    size: int | None = None
    context: Path | None = None


class Delivery(Protocol):
    """The last stage: what happens to a rendered context."""

    def base_images(self, suite: str | None, base_image: str | None) -> base.BaseImages:
        """Name (and, when building, make or pull) the build and runtime images."""
        ...

    def probe(self, image: str) -> wheelhouse.Target:
        """Ask a user-supplied base image which Python and platform it has."""
        ...

    def deliver(self, context: Path, tag: str) -> BuildResult:
        """Turn the context into the result (consumes the context directory)."""
        ...


def default_tag(project: Project) -> str:
    """``<directory name>:latest``, lower-cased and with characters Docker refuses replaced."""
    name = re.sub(r"[^a-z0-9._-]+", "-", project.name.lower()).strip("._-")
    if not name:
        raise TagError(f"cannot make a tag from the directory name {project.name!r}; pass --tag")
    return f"{name}:latest"


def check_tag(tag: str) -> str:
    """Return the tag if Docker would accept it, else raise TagError saying why."""
    if not _TAG.match(tag) or len(tag) > 255:
        raise TagError(
            f"invalid tag {tag!r}: use lower-case NAME[:TAG], e.g. mysite:latest or "
            "team/mysite:1.0 (tag: letters, digits, '_', '.', '-', up to 128)"
        )
    return tag


def image_requirements(project: Project) -> list[str]:
    """The project's requirements plus gunicorn, a MySQL driver and setproctitle if missing."""
    lines = list(project.requirements)
    if "gunicorn" not in project.requirement_names:
        lines.append(GUNICORN_REQUIREMENT)
    if project.mysql_driver is None:
        lines.append(MYSQL_DRIVER_REQUIREMENT)
    if "setproctitle" not in project.requirement_names:
        lines.append(PROCESS_TITLE_REQUIREMENT)
    return lines


def image_labels(
    project: Project, tag: str, images: base.BaseImages, django: str
) -> dict[str, str]:
    """OCI and kitbuild labels; none of them carries anything secret."""
    return {
        "org.opencontainers.image.title": project.name,
        "org.opencontainers.image.description": f"Django project {project.name}, built by kitbuild",
        "org.opencontainers.image.created": datetime.datetime.now(datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "org.opencontainers.image.version": tag.rpartition(":")[2] if ":" in tag else "latest",
        "org.opencontainers.image.base.name": images.runtime,
        "io.kitbuild.version": __version__,
        "io.kitbuild.django-version": django,
        "io.kitbuild.settings-module": project.settings_module,
        "io.kitbuild.wsgi-application": project.wsgi_application,
    }


def build_project(
    options: BuildOptions,
    delivery: Delivery,
    *,
    fetch: Callable[..., wheelhouse.Wheelhouse] = wheelhouse.fetch,
    say: Callable[[str], None] = print,
    workdir: Path | None = None,
) -> BuildResult:
    """Inspect the project, fetch its dependencies, render the context and deliver it."""
    project = inspect_project(
        options.project_dir, settings=options.settings, requirements=options.requirements
    )
    tag = check_tag(options.tag) if options.tag else default_tag(project)
    if options.base_image is not None:
        images = delivery.base_images(None, options.base_image)
        target = delivery.probe(options.base_image)
    else:
        suite = base.choose_suite(project.django_requirement)
        images = delivery.base_images(suite.name, None)
        target = wheelhouse.target_for(suite.python, suite.glibc, platform.machine())
    say(
        f"kitbuild: {project.name}: settings {project.settings_module}, Python {target.python}"
        f" on {images.runtime}"
    )

    staging = Path(tempfile.mkdtemp(prefix="kitbuild-context-", dir=workdir))
    try:
        requirements = image_requirements(project)
        fetched = fetch(requirements, target, staging / "kitbuild" / "wheels", say=say)
        django = fetched.version_of("django") or "unknown"
        spec = render.ContextSpec(
            project=project,
            build_image=images.build,
            runtime_image=images.runtime,
            requirements=requirements,
            labels=image_labels(project, tag, images, django),
        )
        render.write_context(spec, staging)
        return delivery.deliver(staging, tag)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class DockerBuild:
    """Deliver by building with the Docker engine, with the network disabled."""

    def __init__(
        self,
        connect: Callable[[], DockerGateway],
        *,
        on_output: Callable[[str], None],
        say: Callable[[str], None] = print,
        runner: base.Runner = base.run_command,
        nocache: bool = False,
    ) -> None:
        """Build through the gateway ``connect`` gives, streaming output to ``on_output``.

        The engine is reached only when first needed, so a bad project is reported as
        such even when Docker is down.
        """
        self._connect = connect
        self._gateway: DockerGateway | None = None
        self._on_output = on_output
        self._say = say
        self._runner = runner
        self._nocache = nocache

    @property
    def gateway(self) -> DockerGateway:
        """The engine, connected on first use."""
        if self._gateway is None:
            self._gateway = self._connect()
        return self._gateway

    def base_images(self, suite: str | None, base_image: str | None) -> base.BaseImages:
        """Make kit base images that are missing, or check (or pull) the user's."""
        return base.ensure_base_images(
            suite, self.gateway, base_image=base_image, runner=self._runner, say=self._say
        )

    def probe(self, image: str) -> wheelhouse.Target:
        """Ask the image's Python."""
        return wheelhouse.probe_target(self.gateway, image)

    def deliver(self, context: Path, tag: str) -> BuildResult:
        """Build with no network: everything the image needs is in the context."""
        image_id = self.gateway.build(
            context, tag, network_mode="none", nocache=self._nocache, on_output=self._on_output
        )
        summary = self.gateway.summary(tag)
        return BuildResult(tag=tag, image_id=summary.id or image_id, size=summary.size)


class RenderOnly:
    """Deliver by writing the context to a directory; nothing is built (the dry run)."""

    def __init__(self, destination: Path, gateway: Callable[[], DockerGateway]) -> None:
        """Write into ``destination``; ``gateway`` connects only if a probe is needed."""
        self._destination = destination
        self._gateway = gateway
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise KitError(
                f"--render-only {destination} exists and is not empty; name a new directory"
            )

    def base_images(self, suite: str | None, base_image: str | None) -> base.BaseImages:
        """Name the images the Dockerfile will use; make nothing."""
        if base_image is not None:
            return base.BaseImages(build=base_image, runtime=base_image, suite=None)
        assert suite is not None
        return base.BaseImages(
            build=base.image_reference("build", suite),
            runtime=base.image_reference("runtime", suite),
            suite=suite,
        )

    def probe(self, image: str) -> wheelhouse.Target:
        """A user-supplied image must still be asked for its Python, which needs Docker."""
        return wheelhouse.probe_target(self._gateway(), image)

    def deliver(self, context: Path, tag: str) -> BuildResult:
        """Move the finished context into place in one step, so it is never half-written."""
        self._destination.parent.mkdir(parents=True, exist_ok=True)
        if self._destination.exists():
            self._destination.rmdir()  # empty, checked at construction
        shutil.copytree(context, self._destination, symlinks=True)
        return BuildResult(tag=tag, context=self._destination)
