"""Shared fakes for the build stages: no Docker, no network."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.build import bases, wheelhouse
from builder.build.pipeline import BuildResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from builder.build.steps import SystemPackages


def fake_fetch(
    requirements: Sequence[str], target: wheelhouse.Target, directory: Path, **_: Any
) -> wheelhouse.Wheelhouse:
    """Pretend to download: one empty Django wheel, and remember what was asked."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "django-5.2.19-py3-none-any.whl").write_bytes(b"")
    fake_fetch.calls.append((list(requirements), target))  # type: ignore[attr-defined]
    return wheelhouse.Wheelhouse(directory, ())


fake_fetch.calls = []  # type: ignore[attr-defined]


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
        """A user image that says it runs Python 3.12 on glibc 2.36."""
        return wheelhouse.target_for("3.12", "2.36", "x86_64")


class RecordingPublisher:
    """A publisher that copies the rendered context aside so tests can read it."""

    def __init__(self, keep: Path) -> None:
        """Copy each published context to ``keep``."""
        self.keep = keep

    def publish(self, context_dir: Path, tag: str) -> BuildResult:
        """Keep a copy of the context."""
        shutil.copytree(context_dir, self.keep)
        return BuildResult(tag, image_id=None, size=None, context=self.keep)
