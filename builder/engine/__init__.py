"""The engine stage: the one gateway through which kitbuild uses Docker.

No other module imports the Docker SDK or testcontainers; they ask
:class:`~builder.engine.gateway.DockerGateway` and hold
:class:`~builder.engine.gateway.Container` handles, and meet only kitbuild's errors.
"""

from builder.engine.gateway import (
    BuildFailed,
    Container,
    ContainerSpec,
    DockerGateway,
    DockerUnavailable,
    EngineError,
    ExitState,
    ImageMissing,
    ImageSummary,
    LazyGateway,
    Missing,
    Service,
    Task,
)

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
