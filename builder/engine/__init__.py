"""The engine stage: the one gateway through which kitbuild uses Docker.

No module outside this package imports the Docker SDK; the rest of kitbuild asks
:class:`~builder.engine.gateway.DockerGateway`, holds :class:`Container` handles and meets
only kitbuild's errors. The engine knows no database: a server's start-up lives in
:mod:`builder.servers` and reaches the engine through
:meth:`~builder.engine.gateway.DockerGateway.start_testcontainer`.

gateway           the facade: DockerGateway (it delegates to the parts below), LazyGateway
_client           connecting to the engine; SDK errors turned into kitbuild's (one line)
_images           images: look for, pull, describe, import, build, tag, read from, remove
_networks         user-defined bridge networks
_container        the Container handle: state, ports, addresses, logs, processes, removal
_containers       ContainerSpec; create, start, find and run containers
_testcontainers   start a testcontainers container (a server module's) as a spec wires it
_swarm            the node's swarm, stacks (docker CLI), services and their tasks
_cleanup          find and remove what carries a label, containers and networks
"""

from builder.engine._container import Container, ExitState
from builder.engine._containers import ContainerSpec
from builder.engine._images import ImageSummary
from builder.engine._swarm import Service, Task
from builder.engine.gateway import DockerGateway, LazyGateway
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
