"""Base images without a registry: Debian root filesystems from mmdebstrap, docker-imported.

The suites and package lists live in ``images/base/bases.toml``. This module chooses the
suite a project needs, says which images that means, and makes any that are missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import subprocess
import tempfile
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from builder.errors import BaseImageError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from builder.engine import DockerGateway


class Runner(Protocol):
    """Runs a command and returns its completed process (output captured as text)."""

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion."""
        ...


def run_command(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; the default :class:`Runner`."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


@dataclasses.dataclass(frozen=True)
class BaseImages:
    """The two images a build uses: one to compile and install in, one to run on."""

    build: str
    runtime: str
    suite: str | None  # None when the user named their own base image


@dataclasses.dataclass(frozen=True)
class SuiteSpec:
    """One Debian suite from bases.toml."""

    name: str
    python: str
    glibc: str
    django_below: str | None


def _definitions() -> Mapping[str, object]:
    text = resources.files("builder.definitions").joinpath("base/bases.toml").read_text()
    return tomllib.loads(text)


def suites() -> list[SuiteSpec]:
    """The suites kitbuild knows, oldest first."""
    data = _definitions()["suites"]
    assert isinstance(data, dict)
    return [
        SuiteSpec(name, str(spec["python"]), str(spec["glibc"]), spec.get("django_below"))
        for name, spec in data.items()
    ]


def image_reference(kind: str, suite: str) -> str:
    """The local reference of a kit base image, e.g. kitbuild/python:bookworm."""
    images = _definitions()["images"]
    assert isinstance(images, dict)
    return str(images[kind]["reference"]).format(suite=suite)


def packages(kind: str) -> list[str]:
    """The Debian packages in a kit base image of this kind."""
    images = _definitions()["images"]
    assert isinstance(images, dict)
    return [str(name) for name in images[kind]["packages"]]


def customize_hooks(kind: str) -> list[str]:
    """A kind's extra mmdebstrap customize hooks (shell; ``$1`` is the root), if any."""
    images = _definitions()["images"]
    assert isinstance(images, dict)
    return [str(hook) for hook in images[kind].get("customize", [])]


def derived_reference(kind: str, suite: str, extra: Sequence[str]) -> str:
    """The reference of a kind's base with ``extra`` Debian packages added.

    Without extras it is the kit base itself. With them, the tag carries a hash of the
    suite, the kind and the sorted full package list (the kind's and the extras), so the
    same list gives the same image, made once and reused by every later build, and a change
    to bases.toml gives a new one.
    """
    if not extra:
        return image_reference(kind, suite)
    full = sorted({*packages(kind), *extra})
    digest = hashlib.sha256("\n".join([suite, kind, *full]).encode()).hexdigest()[:12]
    return f"{image_reference(kind, suite)}-{digest}"


def choose_suite(django_requirement: str) -> SuiteSpec:
    """Pick the oldest suite whose Python runs the Django the project asks for.

    The lowest version the requirement allows decides: ``Django>=6.0`` or ``==6.0.1``
    needs Python >= 3.12 (trixie); ``Django>=5.2,<5.3`` or plain ``Django`` runs on
    bookworm, where pip then picks the newest Django that supports Python 3.11.
    """
    specifier = django_requirement.split(";", 1)[0]
    specifier = specifier[specifier.lower().find("django") + len("django") :]
    specifier = specifier.split("]", 1)[-1].strip()  # drop extras such as django[argon2]
    try:
        specifiers = SpecifierSet(specifier)
        floors = [
            Version(item.version.rstrip(".*"))
            for item in specifiers
            if item.operator in {"==", "===", "~=", ">=", ">"}
        ]
    except (InvalidSpecifier, InvalidVersion):
        raise BaseImageError(
            f"cannot read the Django requirement {django_requirement!r}; "
            "write it like Django>=5.2,<5.3"
        ) from None
    floor = max(floors, default=Version("0"))
    for suite in suites():
        if suite.django_below is None or floor < Version(suite.django_below):
            return suite
    raise BaseImageError(f"no base suite runs {django_requirement!r}")  # pragma: no cover


def mmdebstrap_command(
    suite: str, package_list: Sequence[str], output: Path, hooks: Sequence[str] = ()
) -> list[str]:
    """The mmdebstrap argv for a small root filesystem: merged /usr, no docs, man or locales."""
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(package_list)}",
        # Without this hook bookworm installs usrmerge, which pulls in perl (45 MB).
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        # apt cannot reach anything inside our builds: drop its lists and sources.
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
        ' "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/*',
        *(f"--customize-hook={hook}" for hook in hooks),
        suite,
        str(output),
    ]


IMPORT_CHANGES = (
    "ENV LANG=C.UTF-8",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    'CMD ["python3"]',
)


#: apt's words for a package the suite does not have.
_MISSING_PACKAGE = re.compile(
    r"(?:Unable to locate package |Package '?)([a-z0-9][a-z0-9+.-]+)'?"
    r"(?:$| has no installation candidate| is not available)",
    re.MULTILINE,
)


def missing_packages(output: str, wanted: Sequence[str]) -> list[str]:
    """The wanted packages apt's output says the suite does not have, in request order."""
    named = {match.group(1) for match in _MISSING_PACKAGE.finditer(output)}
    return [name for name in wanted if name in named]


def make_base_image(
    kind: str,
    suite: str,
    gateway: DockerGateway,
    *,
    extra: Sequence[str] = (),
    runner: Runner = run_command,
    which: Callable[[str], str | None] = shutil.which,
    say: Callable[[str], None] = print,
) -> str:
    """Make one kit base image (plus ``extra`` packages) with mmdebstrap and docker import.

    Returns its reference. Nothing is tagged unless mmdebstrap succeeded.
    """
    reference = derived_reference(kind, suite, extra)
    if which("mmdebstrap") is None:
        raise BaseImageError(
            f"{reference} is not here and mmdebstrap, which makes it, is not installed: "
            "run `apt-get install mmdebstrap`, or pass --base-image IMAGE"
        )
    with_extra = f" (adding {', '.join(extra)})" if extra else ""
    say(f"kitbuild: making {reference} from Debian {suite}{with_extra} with mmdebstrap")
    package_list = list(dict.fromkeys([*packages(kind), *extra]))
    with tempfile.TemporaryDirectory(prefix="kitbuild-base-") as scratch:
        tarball = Path(scratch) / "rootfs.tar"
        result = runner(mmdebstrap_command(suite, package_list, tarball, customize_hooks(kind)))
        if result.returncode != 0:
            output = f"{result.stdout or ''}\n{result.stderr or ''}"
            unknown = missing_packages(output, extra)
            if unknown:
                raise BaseImageError(
                    f"Debian {suite} has no package {', '.join(unknown)}; check the name "
                    f"(e.g. `apt-cache search` on a {suite} machine) in --build-package, "
                    "--runtime-package or [tool.kitbuild]"
                )
            tail = output.strip().splitlines()[-1:] or ["?"]
            raise BaseImageError(f"mmdebstrap failed for {reference}: {tail[0]}")
        changes = [*IMPORT_CHANGES, f"LABEL io.kitbuild.base={suite}"]
        if extra:
            changes.append(f'LABEL io.kitbuild.packages="{" ".join(sorted(extra))}"')
        gateway.import_rootfs(tarball, reference, changes)
    return reference


def ensure_suite(
    suite: str,
    gateway: DockerGateway,
    *,
    force: bool = False,
    quiet_when_present: bool = True,
    extra: Mapping[str, Sequence[str]] | None = None,
    runner: Runner = run_command,
    which: Callable[[str], str | None] = shutil.which,
    say: Callable[[str], None] = print,
) -> BaseImages:
    """The suite's build and runtime images, made when missing (or always, with ``force``).

    ``extra`` maps a kind ("build", "runtime") to Debian packages to add: that kind then
    uses a derived base (:func:`derived_reference`), made once and reused.
    ``quiet_when_present=False`` also says which images were already there.
    """
    references = {}
    for kind in ("build", "runtime"):
        added = tuple((extra or {}).get(kind, ()))
        reference = derived_reference(kind, suite, added)
        if force or not gateway.image_exists(reference):
            make_base_image(kind, suite, gateway, extra=added, runner=runner, which=which, say=say)
            say(f"kitbuild: made {reference}")
        elif not quiet_when_present:
            say(f"kitbuild: {reference} is already here (--force remakes it)")
        references[kind] = reference
    return BaseImages(build=references["build"], runtime=references["runtime"], suite=suite)


def ensure_given(base_image: str, gateway: DockerGateway) -> BaseImages:
    """A user's own base image, for both stages: here already, or pulled."""
    if not gateway.image_exists(base_image) and not gateway.pull(base_image):
        raise BaseImageError(
            f"base image {base_image} is neither here nor pullable; "
            "load it with `docker load`, or leave out --base-image to use kitbuild's"
        )
    return BaseImages(build=base_image, runtime=base_image, suite=None)


def named(suite: str, extra: Mapping[str, Sequence[str]] | None = None) -> BaseImages:
    """The suite's images by name only: what a rendered Dockerfile refers to."""
    extra = extra or {}
    return BaseImages(
        build=derived_reference("build", suite, tuple(extra.get("build", ()))),
        runtime=derived_reference("runtime", suite, tuple(extra.get("runtime", ()))),
        suite=suite,
    )
