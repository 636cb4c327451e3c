"""Shared fakes for the build stages: no Docker, no network."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.engine import DockerGateway
from builder.image import bases, wheelhouse
from builder.image.locks import PackageIndex, Pin
from builder.image.pipeline import BuildResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from builder.image.steps import SystemPackages


class FakeFetch:
    """Pretend to download: one empty Django wheel, and remember what was asked."""

    def __init__(self) -> None:
        """No call yet."""
        self.calls: list[tuple[list[Pin], wheelhouse.Target]] = []

    def __call__(
        self,
        pins: Sequence[Pin],
        target: wheelhouse.Target,
        directory: Path,
        *,
        say: Callable[[str], None] = print,
    ) -> wheelhouse.Wheelhouse:
        """Write the wheel, record the pins and target; every line gets a (fake) hash."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "django-5.2.19-py3-none-any.whl").write_bytes(b"")
        self.calls.append((list(pins), target))
        lines = tuple(
            dataclasses.replace(pin, hashes=pin.hashes or ("sha256:fake",)).line() for pin in pins
        )
        return wheelhouse.Wheelhouse(directory, (), lines)


class FakeResolve:
    """Pretend to resolve: each requirement at its == version (else 1.0), nothing more."""

    def __init__(self) -> None:
        """No call yet."""
        self.calls: list[tuple[list[str], wheelhouse.Target, list[Pin]]] = []

    def __call__(
        self,
        requirements: Sequence[str],
        target: wheelhouse.Target,
        *,
        constraints: Sequence[Pin] = (),
        indexes: Sequence[PackageIndex] = (),
    ) -> list[Pin]:
        """Record the requirements, target and constraints; pin each requirement."""
        self.calls.append((list(requirements), target, list(constraints)))
        pins = []
        for line in requirements:
            requirement = Requirement(line)
            exact = [s.version for s in requirement.specifier if s.operator == "=="]
            pins.append(Pin(canonicalize_name(requirement.name), (exact or ["1.0"])[0]))
        return pins


#: One of each for the whole session, as the build tests share them: read ``calls[-1]``.
fake_fetch = FakeFetch()
fake_resolve = FakeResolve()

#: The Python each kit suite's Debian ships (what probing its image reports).
SUITE_PYTHON = {"bookworm": "3.11.2", "trixie": "3.13.5"}


class FakeBases:
    """Base images named, never made; a user's image says it runs Python 3.12."""

    def __init__(self) -> None:
        """Remember every request."""
        self.requests: list[tuple[str | None, str | None]] = []
        self.packages: SystemPackages | None = None

    def base_images(
        self, suite: str | None, base_image: str | None, packages: SystemPackages | None = None
    ) -> bases.BaseImages:
        """Record the request and name the images without making them."""
        self.requests.append((suite, base_image))
        self.packages = packages
        if base_image:
            return bases.BaseImages(base_image, base_image, None)
        assert suite is not None
        return bases.named(suite, packages.by_kind() if packages else None)

    def probe(self, image: str) -> wheelhouse.Target:
        """A kit base reports its suite's Python; a user image says it runs 3.12.3."""
        for suite in bases.suites():
            if image == bases.image_reference("build", suite.name):
                return wheelhouse.target_for(SUITE_PYTHON[suite.name], suite.glibc, "x86_64")
        return wheelhouse.target_for("3.12.3", "2.36", "x86_64")


class RecordingPublisher:
    """A publisher that copies the rendered context aside so tests can read it."""

    def __init__(self, keep: Path) -> None:
        """Copy each published context to ``keep``."""
        self.keep = keep

    def publish(self, context_dir: Path, tag: str) -> BuildResult:
        """Keep a copy of the context."""
        shutil.copytree(context_dir, self.keep)
        return BuildResult(tag, image_id=None, size=None, context=self.keep)


class FakeImages(DockerGateway):
    """The engine's images, as the kit's bases use them: some present, each import recorded.

    No engine is behind it: the gateway's own constructor is not run (it wants a client),
    so any call these tests do not expect fails on the gateway's missing state.
    """

    def __init__(self, present: Iterable[str] = ()) -> None:
        """Start with ``present`` images and nothing imported."""
        self.present = set(present)
        self.imported: list[str] = []

    def image_exists(self, reference: str) -> bool:
        """Whether the reference is one of the present images."""
        return reference in self.present

    def import_rootfs(self, tarball: Path, reference: str, changes: Sequence[str]) -> str:
        """Record the import and make the image present."""
        self.imported.append(reference)
        self.present.add(reference)
        return "sha256:0"
