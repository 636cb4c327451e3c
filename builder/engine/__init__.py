"""The engine stage: the one gateway through which kitbuild uses Docker.

No other module imports the Docker SDK or testcontainers; they ask
:class:`~builder.engine.gateway.DockerGateway` and hold
:class:`~builder.engine.gateway.Container` handles, and meet only kitbuild's errors.
"""

from builder.engine.gateway import (
    Container,
    ContainerSpec,
    DockerGateway,
    ExitState,
    ImageSummary,
    LazyGateway,
    Service,
    Task,
)
from builder.errors import BuildFailed, DockerUnavailable, EngineError, ImageMissing, Missing

__all__ = [
    "BuildFailed",
    "Container",
    "ContainerSpec",
    "DockerGateway",
    "DockerUnavailable",
    "EngineError",
    "ExitState",
    "ImageMissing",
    "ImageSummary",
    "LazyGateway",
    "Missing",
    "Service",
    "Task",
]
