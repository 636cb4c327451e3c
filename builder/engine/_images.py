"""Images: look for, pull, describe, import, build, tag, read from and remove them."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import tarfile
from typing import TYPE_CHECKING, Any

import docker.errors

from builder.engine._client import engine_call, one_line
from builder.errors import BuildFailed, DockerUnavailable, EngineError, ImageMissing, Missing

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path


@dataclasses.dataclass(frozen=True)
class ImageSummary:
    """What kitbuild reports about a built image."""

    id: str
    size: int
    labels: Mapping[str, str]
    user: str
    history: tuple[str, ...]  # the command that made each layer, newest first


_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")


class Images:
    """The engine's local images."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Work through an SDK client."""
        self._client = client

    def exists(self, reference: str) -> bool:
        """Say whether an image is present locally (never pulls)."""
        try:
            with engine_call(f"looking for image {reference}"):
                self._client.api.inspect_image(reference)
        except Missing:
            return False
        return True

    def pull(self, reference: str) -> bool:
        """Try to pull an image; return False when no registry provides it."""
        try:
            with engine_call(f"pulling {reference}"):
                self._client.images.pull(reference)
                return True
        except EngineError:
            return False

    def tags(self, reference: str) -> list[str]:
        """The tags of the local images matching ``reference`` (a pattern such as kit/*)."""
        with engine_call(f"listing images {reference}"):
            found = self._client.images.list(name=reference)
        return sorted(tag for image in found for tag in image.tags)

    def summary(self, reference: str) -> ImageSummary:
        """Describe a local image: id, size, labels, user and layer history."""
        try:
            with engine_call(f"inspecting image {reference}"):
                info = self._client.api.inspect_image(reference)
                history = self._client.api.history(reference)
        except Missing:
            raise ImageMissing(f"image {reference} not found locally") from None
        config = info.get("Config") or {}
        return ImageSummary(
            id=info["Id"],
            size=int(info.get("Size", 0)),
            labels=dict(config.get("Labels") or {}),
            user=config.get("User") or "",
            history=tuple(str(layer.get("CreatedBy", "")) for layer in history),
        )

    def import_rootfs(self, tarball: Path, reference: str, changes: Sequence[str]) -> str:
        """``docker import`` a root filesystem tarball as ``reference``; return the image id."""
        repository, _, tag = reference.rpartition(":")
        with engine_call(f"docker import of {tarball}"):
            result = self._client.api.import_image(
                src=str(tarball), repository=repository, tag=tag, changes=list(changes)
            )
        image_id = _parse_import_result(result)
        if image_id is None:
            raise EngineError(f"docker import of {tarball} failed: {str(result).strip()[:200]}")
        return image_id

    def build(
        self,
        context: Path,
        tag: str,
        *,
        network_mode: str | None,
        nocache: bool,
        on_output: Callable[[str], None],
    ) -> str:
        """Build the context's Dockerfile with the classic builder, streaming its output.

        Returns the image id. On failure, raises BuildFailed naming the failing step;
        the step's output has already gone to ``on_output``. The tag is only applied
        when the build succeeds, so a failed build leaves no half-built image tagged.
        """
        step = "?"
        step_text = ""
        image_id: str | None = None
        failure: BuildFailed | None = None
        try:
            stream = self._client.api.build(
                path=str(context),
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,  # a local FROM must never be refreshed from a registry
                decode=True,
                network_mode=network_mode,
                nocache=nocache,
            )
            for chunk in stream:
                if "stream" in chunk:
                    text = str(chunk["stream"])
                    on_output(text)
                    for line in text.splitlines():
                        match = _STEP.match(line.strip())
                        if match:
                            step, step_text = match.group(1), match.group(2)
                        built = re.match(r"^Successfully built ([0-9a-f]+)", line.strip())
                        if built and image_id is None:
                            image_id = built.group(1)
                elif "error" in chunk and failure is None:
                    # Read on to the end of the stream, so its connection is released.
                    failure = BuildFailed(
                        f"build failed at step {step} ({step_text[:80]}): "
                        f"{one_line(chunk['error'])}"
                    )
                elif "aux" in chunk and isinstance(chunk["aux"], dict):
                    image_id = chunk["aux"].get("ID", image_id)
        except docker.errors.APIError as error:
            raise BuildFailed(f"build failed: {one_line(error)}") from None
        except docker.errors.DockerException as error:
            raise DockerUnavailable(f"lost the Docker engine: {one_line(error)}") from None
        if failure is not None:
            raise failure
        if image_id is None:
            raise BuildFailed(f"build of {tag} ended without an image id")
        return image_id

    def tag(self, source: str, target: str) -> None:
        """Give a local image another name (``docker tag``)."""
        repository, _, tag = target.rpartition(":")
        with engine_call(f"tagging {source} as {target}"):
            self._client.images.get(source).tag(repository, tag)

    def remove(self, reference: str) -> None:
        """Remove a local image if it exists."""
        with contextlib.suppress(Missing), engine_call(f"removing image {reference}"):
            self._client.api.remove_image(reference, force=True)

    def read_file(self, image: str, path: str) -> bytes:
        """One regular file from an image, read through a created (never started) container."""
        with engine_call(f"reading {path} from {image}"):
            container = self._client.api.create_container(image, command=["true"])
            try:
                chunks, _stat = self._client.api.get_archive(container["Id"], path)
                with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
                    member = archive.next()
                    data = archive.extractfile(member) if member is not None else None
                    if data is None:
                        raise EngineError(f"{path} in {image} is not a regular file")
                    return data.read()
            finally:
                self._client.api.remove_container(container["Id"], force=True)


def _parse_import_result(result: Any) -> str | None:
    """The image id (sha256:...) in what ``docker import`` answered, None without one."""
    text = result if isinstance(result, str) else str(result)
    match = re.search(r"sha256:[0-9a-f]{64}", text)
    return match.group(0) if match else None
