"""The facade through which kitbuild talks to the Docker engine.

Everything else in kitbuild asks :class:`DockerGateway` for what it needs, in kitbuild's
own terms: images, builds, networks and :class:`~builder.engine.Container` handles. The
gateway only delegates: each kind of resource has its own private module (the map is in
:mod:`builder.engine`), and every engine call there turns the SDK's exceptions into
kitbuild's own errors, so none reaches the user as a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from builder.engine import _client
from builder.engine._cleanup import Cleanup
from builder.engine._containers import Containers
from builder.engine._images import Images
from builder.engine._networks import Networks
from builder.engine._swarm import Swarm
from builder.engine._testcontainers import start_testcontainer

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    import docker
    from testcontainers.core.container import DockerContainer

    from builder.engine._container import Container
    from builder.engine._containers import ContainerSpec
    from builder.engine._images import ImageSummary
    from builder.engine._swarm import Service


class DockerGateway:
    """A thin, typed facade over ``docker.DockerClient``: one object, one part per resource."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Wrap an SDK client; use :meth:`connect` to make one from the environment."""
        self._client = client
        self._images = Images(client)
        self._networks = Networks(client)
        self._containers = Containers(client)
        self._swarm = Swarm(client, self._containers)
        self._cleanup = Cleanup(client)

    @classmethod
    def connect(cls, environ: Mapping[str, str] | None = None) -> DockerGateway:
        """Connect to the engine DOCKER_HOST (or the local socket) names, and ping it."""
        return cls(_client.connect(environ))

    def close(self) -> None:
        """Close the connection to the engine."""
        self._client.close()

    # ------------------------------------------------------------------------ images

    def image_exists(self, reference: str) -> bool:
        """Say whether an image is present locally (never pulls)."""
        return self._images.exists(reference)

    def pull(self, reference: str) -> bool:
        """Try to pull an image; return False when no registry provides it."""
        return self._images.pull(reference)

    def images(self, reference: str) -> list[str]:
        """The tags of the local images matching ``reference`` (a pattern such as kit/*)."""
        return self._images.tags(reference)

    def summary(self, reference: str) -> ImageSummary:
        """Describe a local image: id, size, labels, user and layer history."""
        return self._images.summary(reference)

    def import_rootfs(self, tarball: Path, reference: str, changes: Sequence[str]) -> str:
        """``docker import`` a root filesystem tarball as ``reference``; return the image id."""
        return self._images.import_rootfs(tarball, reference, changes)

    def build(
        self,
        context: Path,
        tag: str,
        *,
        network_mode: str | None = None,
        nocache: bool = False,
        on_output: Callable[[str], None] = lambda _line: None,
    ) -> str:
        """Build the context's Dockerfile, its output streamed to ``on_output``; the image id."""
        return self._images.build(
            context, tag, network_mode=network_mode, nocache=nocache, on_output=on_output
        )

    def tag_image(self, source: str, target: str) -> None:
        """Give a local image another name (``docker tag``)."""
        self._images.tag(source, target)

    def remove_image(self, reference: str) -> None:
        """Remove a local image if it exists."""
        self._images.remove(reference)

    def read_file(self, image: str, path: str) -> bytes:
        """One regular file from an image, read through a created (never started) container."""
        return self._images.read_file(image, path)

    # ---------------------------------------------------------------------- networks

    def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        """A user-defined bridge network, so containers reach each other by alias."""
        return self._networks.create(name, labels)

    # -------------------------------------------------------------------- containers

    def create(self, spec: ContainerSpec) -> Container:
        """Create (not start) a container as ``spec`` says."""
        return self._containers.create(spec)

    def start(self, spec: ContainerSpec) -> Container:
        """Create and start a container; a host port the engine found taken is tried again."""
        return self._containers.start(spec)

    def start_testcontainer(self, spec: ContainerSpec, server: DockerContainer) -> Container:
        """Start a testcontainers container of ``spec.image``; return once its class says ready.

        The seam for database servers (:mod:`builder.servers`): the server's module makes
        the container, knowing its accounts and how to wait for it; the engine wires it as
        ``spec`` says, knowing no database.
        """
        return start_testcontainer(spec, server)

    def container(self, name_or_id: str) -> Container:
        """A handle on an existing container (one compose or Swarm started, say)."""
        return self._containers.container(name_or_id)

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        """Every container (any state) carrying all of ``labels``."""
        return self._containers.containers(labels)

    def run(self, image: str, command: Sequence[str], **options: Any) -> bytes:
        """Run a throwaway container to completion and return its output (checks, probes)."""
        return self._containers.run(image, command, options)

    # ------------------------------------------------------------------------- swarm

    def swarm_state(self) -> str:
        """The node's Swarm state: "active", "inactive", "pending" ..."""
        return self._swarm.state()

    def ensure_swarm(self) -> None:
        """Make this engine a one-node swarm if it is not in one (it never leaves again)."""
        self._swarm.ensure()

    def stack_deploy(self, stack_file: Path, name: str, timeout: float = 120) -> str:
        """`docker stack deploy` (the SDK has no stacks); local images, never a registry."""
        return self._swarm.stack_deploy(stack_file, name, timeout)

    def stack_remove(self, name: str, within: float = 120) -> None:
        """`docker stack rm`; once its containers and network are gone, its volumes too."""
        self._swarm.stack_remove(name, within)

    def service(self, name: str) -> Service:
        """A handle on a Swarm service (``<stack>_<service>``)."""
        return self._swarm.service(name)

    # ----------------------------------------------------------------------- cleanup

    def labelled(self, key: str, value: str | None = None) -> list[str]:
        """The names of the containers (any state) and networks labelled ``key[=value]``."""
        return self._cleanup.labelled(key, value)

    def remove_labelled(self, key: str, value: str) -> None:
        """Remove every container (with its anonymous volumes) and network labelled key=value."""
        self._cleanup.remove_labelled(key, value)


class LazyGateway:
    """Connects to the engine on first use, so work that never needs it never waits for it.

    A bad project is then reported as such even when Docker is down. Call it to get the
    gateway; :meth:`close` closes it if it was ever opened.
    """

    def __init__(self, connect: Callable[[], DockerGateway] = DockerGateway.connect) -> None:
        """Connect with ``connect`` when first asked."""
        self._connect = connect
        self._gateway: DockerGateway | None = None

    def __call__(self) -> DockerGateway:
        """The gateway, connected now if it was not yet."""
        if self._gateway is None:
            self._gateway = self._connect()
        return self._gateway

    def close(self) -> None:
        """Close the connection, if one was made."""
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
