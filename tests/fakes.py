"""Shared fakes for the build stages: no Docker, no network."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from builder.image import bases, wheelhouse
from builder.image.locks import Pin
from builder.image.pipeline import BuildResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from builder.image.steps import SystemPackages


def fake_fetch(
    pins: Sequence[Pin], target: wheelhouse.Target, directory: Path, **_: Any
) -> wheelhouse.Wheelhouse:
    """Pretend to download: one empty Django wheel, and remember what was asked."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "django-5.2.19-py3-none-any.whl").write_bytes(b"")
    fake_fetch.calls.append((list(pins), target))  # type: ignore[attr-defined]
    lines = tuple(
        dataclasses.replace(pin, hashes=pin.hashes or ("sha256:fake",)).line() for pin in pins
    )
    return wheelhouse.Wheelhouse(directory, (), lines)


fake_fetch.calls = []  # type: ignore[attr-defined]


def fake_resolve(
    requirements: Sequence[str], target: wheelhouse.Target, **options: Any
) -> list[Pin]:
    """Pretend to resolve: each requirement at its == version (else 1.0), nothing more."""
    fake_resolve.calls.append((list(requirements), target, options))  # type: ignore[attr-defined]
    pins = []
    for line in requirements:
        requirement = Requirement(line)
        exact = [s.version for s in requirement.specifier if s.operator == "=="]
        pins.append(Pin(canonicalize_name(requirement.name), (exact or ["1.0"])[0]))
    return pins


fake_resolve.calls = []  # type: ignore[attr-defined]

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
