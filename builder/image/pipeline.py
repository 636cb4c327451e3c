"""Build an image of a Django project: inspect, find the bases, fetch, render, publish.

Each stage has a small contract, and :func:`build_project` wires them. The command
chooses the implementations:

* :class:`BaseSource` finds the inputs the project does not carry: the base images and
  the Python they run. :class:`EngineBases` makes kitbuild's bases when they are missing
  (or checks the user's); :class:`NamedBases` only names them.
* :class:`Publisher` is the last stage: :class:`EngineBuild` builds the context with the
  engine; :class:`ContextDirectory` writes it to a directory and builds nothing (the dry
  run), a real implementation of the same contract rather than a flag.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from builder import __version__
from builder.errors import (
    BaseImageError,
    BuildConfigError,
    BuildFailed,
    KitError,
    ResolveError,
    TagError,
)
from builder.image import bases, context, dependencies, hints, locks, steps, wheelhouse
from builder.image.cache import ProbeCache
from builder.image.config import KitConfig, read_config
from builder.image.created import image_created
from builder.image.project import MYSQL_DRIVERS, Project, find_project_dirs, inspect_project

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping, Sequence

    from builder.engine import DockerGateway

#: Added when the project does not bring its own (Django's documented MySQL driver; it
#: is compiled in the build stage, so the runtime image carries only its 0.6 MB library).
GUNICORN_REQUIREMENT = "gunicorn>=23,<28"
MYSQL_DRIVER_REQUIREMENT = "mysqlclient>=2.2.1,<3"
#: Makes the image's SBOM in the build stage, from its own throwaway venv.
SBOM_TOOL_REQUIREMENT = "cyclonedx-bom>=7,<8"
#: Installs the wheelhouse in the build stage: uv, the very version that resolves on the
#: host, as its wheel for the image's platform (measured faster than pip: bench/results.md).
INSTALLER_REQUIREMENT = f"uv=={metadata.version('uv')}"
#: Added beside a project's gunicorn older than 21, which imports pkg_resources (gone from
#: setuptools 81 on).
PKG_RESOURCES_REQUIREMENT = "setuptools<81"
#: Lets gunicorn name its processes gunicorn_<project> (the seed's proc_name) in ps and top.
PROCESS_TITLE_REQUIREMENT = "setproctitle>=1.3,<2"

_TAG = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?"  # optional registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """What the user asked for."""

    project_dir: Path
    tag: str | None = None
    settings: str | None = None
    requirements: Path | None = None
    base_image: str | None = None
    #: The other [tool.kitbuild] settings given as flags; laid over the project's table.
    config: KitConfig = dataclasses.field(default_factory=KitConfig)

    def flags(self) -> KitConfig:
        """Every flag that has a [tool.kitbuild] equivalent, as one config."""
        return dataclasses.replace(
            self.config,
            settings=self.settings,
            requirements=str(self.requirements) if self.requirements else None,
        )


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """What a publisher produced: an image, or a context on disk."""

    tag: str
    image_id: str | None  # None for a context on disk
    size: int | None
    context: Path | None  # None for an image


class BaseSource(Protocol):
    """Finds what the build starts from: the base images, and the Python they run."""

    def base_images(
        self,
        suite: str | None,
        base_image: str | None,
        packages: steps.SystemPackages | None = None,
    ) -> bases.BaseImages:
        """The build and runtime images: the suite's, or the user's ``base_image``.

        ``packages`` are Debian packages to add to the suite's bases.
        """
        ...

    def probe(self, image: str) -> wheelhouse.Target:
        """Ask a base image (the build stage's) which Python, full version, and platform it has."""
        ...


class Publisher(Protocol):
    """The last stage: what happens to a rendered context."""

    def publish(self, context_dir: Path, tag: str) -> BuildResult:
        """Turn the context into the result (the context directory is removed afterwards)."""
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


def kit_additions(names: Collection[str], gunicorn: str | None = None) -> list[str]:
    """Gunicorn, a MySQL driver and setproctitle, unless the project (``names``) has them.

    ``gunicorn`` is the project's own gunicorn requirement or pin (``gunicorn==20.1.0``):
    before 21 gunicorn imports pkg_resources, which the venv lacks unless setuptools is
    there, so kitbuild adds a setuptools that still has it.
    """
    lines = []
    if "gunicorn" not in names:
        lines.append(GUNICORN_REQUIREMENT)
    if not set(names) & MYSQL_DRIVERS:
        lines.append(MYSQL_DRIVER_REQUIREMENT)
    if "setproctitle" not in names:
        lines.append(PROCESS_TITLE_REQUIREMENT)
    if gunicorn is not None and "setuptools" not in names and _before_21(gunicorn):
        lines.append(PKG_RESOURCES_REQUIREMENT)
    return lines


def _before_21(gunicorn: str) -> bool:
    """The project's gunicorn requirement allows only versions before 21."""
    specifier = Requirement(gunicorn).specifier
    return bool(specifier) and not any(
        specifier.contains(version, prereleases=True) for version in ("21.0", "22.0", "23.0")
    )


def image_pins(
    selection: dependencies.Selection,
    target: wheelhouse.Target,
    resolve: wheelhouse.Resolve,
) -> list[locks.Pin]:
    """Every package the image installs, at one exact version each.

    A lock's pins are kept as they are; kitbuild's own additions are resolved around them
    (constrained to the locked versions). Anything unlocked is resolved for the target.
    """
    if not selection.locked:
        unresolved = list(selection.unresolved)
        names = {canonicalize_name(Requirement(line).name) for line in unresolved}
        own = next(
            (
                line
                for line in unresolved
                if canonicalize_name(Requirement(line).name) == "gunicorn"
            ),
            None,
        )
        return resolve([*unresolved, *kit_additions(names, own)], target, indexes=selection.indexes)
    pins = list(selection.pins)
    locked = next((pin for pin in pins if pin.name == "gunicorn" and pin.version), None)
    additions = kit_additions(
        {pin.name for pin in pins}, f"gunicorn=={locked.version}" if locked else None
    )
    if additions:
        known = {pin.name for pin in pins}
        extra = resolve(additions, target, constraints=pins)
        pins += [pin for pin in extra if pin.name not in known]
    return pins


def check_complete(
    source: str, pins: Sequence[locks.Pin], directory: Path, target: wheelhouse.Target
) -> None:
    """Refuse, in one line, a locked set that lacks a dependency the image's Python needs."""
    missing = wheelhouse.unpinned_dependencies(pins, directory, target)
    if missing:
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ResolveError(
            f"{source} does not pin {first.name}, which "
            f"{first.needed_by} needs on the image's Python {target.python_full} "
            f"({first.requirement}){more}: lock for Python {target.python_full} on Linux "
            f"(for example `uv pip compile --python-version {target.python_full} "
            "--python-platform linux --generate-hashes`), or add the pin"
        )


def choose_suite(project: Project, asked: str | None = None) -> bases.SuiteSpec:
    """The suite asked for, if it can run the project's Django.

    Without one: the oldest suite that runs the project's Django and whose Python the
    project allows.
    """
    suite = bases.choose_suite(project.django_requirement)
    if asked is not None:
        known = {spec.name: spec for spec in bases.suites()}
        if asked not in known:
            raise BaseImageError(f"suite {asked!r}: kitbuild's base suites are {', '.join(known)}")
        if Version(known[asked].python) < Version(suite.python):
            raise BaseImageError(
                f"suite {asked}: its Python {known[asked].python} cannot run "
                f"{project.django_requirement}; use suite {suite.name} or newer"
            )
        return known[asked]
    allowed = project.dependencies.requires_python()
    if allowed is None:
        return suite
    later = [s for s in bases.suites() if Version(s.python) >= Version(suite.python)]
    for candidate in later:
        if any(allowed.contains(f"{candidate.python}.{patch}") for patch in range(50)):
            return candidate
    return suite  # none fits: the lock's own check names the Python it wants


def image_labels(
    project: Project, tag: str, images: bases.BaseImages, django: str
) -> dict[str, str]:
    """OCI and kitbuild labels; none of them carries anything secret.

    ``org.opencontainers.image.created`` is not here: :mod:`builder.image.created` decides
    its value and its place in the Dockerfile.
    """
    return {
        "org.opencontainers.image.title": project.name,
        "org.opencontainers.image.description": f"Django project {project.name}, built by kitbuild",
        "org.opencontainers.image.version": tag.rpartition(":")[2] if ":" in tag else "latest",
        "org.opencontainers.image.base.name": images.runtime,
        "io.kitbuild.version": __version__,
        "io.kitbuild.django-version": django,
        "io.kitbuild.settings-module": project.settings_module,
        "io.kitbuild.wsgi-application": project.wsgi_application,
        "io.kitbuild.sbom": context.SBOM_PATH,
        "io.kitbuild.sbom.format": "CycloneDX 1.6 JSON",
    }


def checked_build_files(
    root: Path, pairs: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """Each build file's source as an absolute path (the table's are the project's), checked.

    A source that is missing or not a regular file stops the build here, naming it.
    """
    checked_pairs = []
    for source, dest in pairs:
        path = Path(source) if Path(source).is_absolute() else root / source
        if not path.is_file():
            state = "is not a file" if path.exists() else "does not exist"
            raise BuildConfigError(
                f"--build-file {source}:{dest}: {path} {state}; give an existing file as SRC"
            )
        checked_pairs.append((str(path), dest))
    return tuple(checked_pairs)


def build_project(
    options: BuildOptions,
    *,
    sources: BaseSource,
    publisher: Publisher,
    fetch: wheelhouse.Fetch = wheelhouse.fetch,
    resolve: wheelhouse.Resolve = wheelhouse.resolve,
    say: Callable[[str], None] = print,
    workdir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> BuildResult:
    """Inspect the project, fetch its dependencies, render the context and deliver it."""
    root, app_dir = find_project_dirs(options.project_dir)
    config = read_config(root, app_dir).overridden_by(options.flags())
    config = dataclasses.replace(config, build_files=checked_build_files(root, config.build_files))
    project = inspect_project(
        root,
        settings=config.settings,
        requirements=Path(config.requirements) if config.requirements else None,
    )
    tag = check_tag(options.tag) if options.tag else default_tag(project)
    if config.settings is None:
        hint = hints.settings_hint(
            project.root / project.app_dir,
            project.settings_module,
            project.wsgi_application.rpartition(".")[0],
        )
        if hint:
            say(hint)
    translations = steps.has_translations(project.root)
    packages = steps.system_packages(config, translations=translations)
    if options.base_image is not None and config.suite is not None:
        raise BaseImageError(
            f"--base-image {options.base_image} and suite {config.suite} both choose the base; "
            "give one of them"
        )
    if options.base_image is not None:
        asked = (*config.build_packages, *config.runtime_packages)
        if asked:
            raise BaseImageError(
                f"--base-image {options.base_image}: kitbuild cannot add Debian packages "
                f"({', '.join(asked)}) to your own image; install them in it, or leave out "
                "--base-image to use kitbuild's bases"
            )
        images = sources.base_images(None, options.base_image)
        target = sources.probe(options.base_image)
    else:
        suite = choose_suite(project, config.suite)
        images = sources.base_images(suite.name, None, packages)
        # The image's own Python says its full version (markers need 3.11.2, not 3.11).
        target = sources.probe(images.build)
    say(
        f"kitbuild: {project.name}: settings {project.settings_module}, Python {target.python_full}"
        f" on {images.runtime}"
    )

    staging = Path(tempfile.mkdtemp(prefix="kitbuild-context-", dir=workdir))
    try:
        selection = project.dependencies.select(target.lock_target(), config.groups)
        for note in project.dependencies.notes:
            say(note)
        pins = image_pins(selection, target, resolve)
        fetched = fetch(pins, target, staging / "kitbuild" / "wheels", say=say)
        if selection.locked:
            check_complete(project.dependencies.source, pins, fetched.directory, target)
        # Every line carries hashes (the lock's, or those of the files fetched).
        requirements = ["--require-hashes", *fetched.requirements]
        # The build stage's tools, beside the wheelhouse: resolved for the target, fetched.
        tool_pins = resolve([INSTALLER_REQUIREMENT, SBOM_TOOL_REQUIREMENT], target)
        fetch(tool_pins, target, staging / context.TOOLS_FOLDER, say=say)
        django = fetched.version_of("django") or "unknown"
        spec = context.ContextSpec(
            project=project,
            build_image=images.build,
            runtime_image=images.runtime,
            requirements=requirements,
            labels=image_labels(project, tag, images, django),
            created=image_created(project.root, os.environ if env is None else env),
            config=config,
            steps=steps.plan_steps(project, config, translations=translations),
        )
        context.write_context(spec, staging)
        try:
            return publisher.publish(staging, tag)
        except BuildFailedWithOutput as error:
            raise explained(error, error.output, images.suite) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class EngineBases:
    """Make kitbuild's base images when missing, or check (or pull) the user's; probe it."""

    def __init__(
        self,
        gateway: Callable[[], DockerGateway],
        *,
        runner: bases.Runner = bases.run_command,
        say: Callable[[str], None] = print,
        probes: ProbeCache | None = None,
    ) -> None:
        """Reach the engine through ``gateway`` (connected on first use); cache probes."""
        self._gateway = gateway
        self._runner = runner
        self._say = say
        self._probes = probes

    def base_images(
        self,
        suite: str | None,
        base_image: str | None,
        packages: steps.SystemPackages | None = None,
    ) -> bases.BaseImages:
        """The suite's images, made when missing, or the user's image, pulled if need be."""
        if base_image is not None:
            return bases.ensure_given(base_image, self._gateway())
        assert suite is not None
        return bases.ensure_suite(
            suite,
            self._gateway(),
            extra=packages.by_kind() if packages else None,
            runner=self._runner,
            say=self._say,
        )

    def probe(self, image: str) -> wheelhouse.Target:
        """Ask the image's Python, once per image id when probes are cached."""
        return _probe(self._gateway(), image, self._probes)


class NamedBases:
    """Name the base images without making any (for a context that is only written)."""

    def __init__(
        self, gateway: Callable[[], DockerGateway], *, probes: ProbeCache | None = None
    ) -> None:
        """``gateway`` connects only if a user's base image must be probed."""
        self._gateway = gateway
        self._probes = probes

    def base_images(
        self,
        suite: str | None,
        base_image: str | None,
        packages: steps.SystemPackages | None = None,
    ) -> bases.BaseImages:
        """The names the Dockerfile will use."""
        if base_image is not None:
            return bases.BaseImages(build=base_image, runtime=base_image, suite=None)
        assert suite is not None
        return bases.named(suite, packages.by_kind() if packages else None)

    def probe(self, image: str) -> wheelhouse.Target:
        """The image must be asked for its Python (its full version too), which needs Docker."""
        return _probe(self._gateway(), image, self._probes)


def _probe(gateway: DockerGateway, image: str, probes: ProbeCache | None) -> wheelhouse.Target:
    """Probe ``image``, or answer from the cache for the same image id (no container)."""
    if probes is None:
        return wheelhouse.probe_target(gateway, image)
    image_id = gateway.summary(image).id
    return probes.target(image_id, lambda: wheelhouse.probe_target(gateway, image))


class EngineBuild:
    """Publish by building with the Docker engine, with the network disabled."""

    def __init__(
        self,
        gateway: Callable[[], DockerGateway],
        *,
        on_output: Callable[[str], None],
        nocache: bool = False,
    ) -> None:
        """Build through ``gateway``, streaming the engine's output to ``on_output``."""
        self._gateway = gateway
        self._on_output = on_output
        self._nocache = nocache

    def publish(self, context_dir: Path, tag: str) -> BuildResult:
        """Build with no network: everything the image needs is in the context."""
        gateway = self._gateway()
        output: list[str] = []

        def keep(text: str) -> None:
            output.append(text)
            self._on_output(text)

        try:
            image_id = gateway.build(
                context_dir, tag, network_mode="none", nocache=self._nocache, on_output=keep
            )
        except BuildFailed as error:
            raise BuildFailedWithOutput(str(error), "".join(output)) from None
        summary = gateway.summary(tag)
        return BuildResult(tag, summary.id or image_id, summary.size, context=None)


class BuildFailedWithOutput(BuildFailed):
    """The engine's build failure, with the build's output for :func:`explained` to read."""

    def __init__(self, message: str, output: str) -> None:
        """Keep the output beside the engine's one-line message."""
        super().__init__(message)
        self.output = output


def explained(error: BuildFailed, output: str, suite: str | None) -> BuildFailed:
    """The build's failure in one line, saying which kitbuild step failed.

    When a known source package could not compile, it names the Debian packages to add.
    """
    where = re.match(r"build failed at step (\S+)", str(error))
    at = f"build failed at step {where.group(1)}" if where else "build failed"
    step = hints.failed_step(output)
    if step is not None:
        return BuildFailed(f"{at}, in build step {step}")
    advice = hints.compile_hint(output, suite)
    if advice is not None:
        return BuildFailed(f"{at}, installing the dependencies: {advice}")
    return error


class ContextDirectory:
    """Publish by writing the context to a directory; nothing is built (the dry run)."""

    def __init__(self, destination: Path) -> None:
        """Write into ``destination``, which must be new or empty."""
        self._destination = destination
        if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
            raise KitError(
                f"--render-only {destination} exists and is not empty; name a new directory"
            )

    def publish(self, context_dir: Path, tag: str) -> BuildResult:
        """Copy the finished context into place, so it is never half-written."""
        self._destination.parent.mkdir(parents=True, exist_ok=True)
        if self._destination.exists():
            self._destination.rmdir()  # empty, checked at construction
        shutil.copytree(context_dir, self._destination, symlinks=True)
        return BuildResult(tag, image_id=None, size=None, context=self._destination)
