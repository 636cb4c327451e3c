"""Networks: the user-defined bridges a run's containers reach each other on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from builder.engine._client import engine_call

if TYPE_CHECKING:
    from collections.abc import Mapping

    import docker


class Networks:
    """The engine's networks."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Work through an SDK client."""
        self._client = client

    def create(self, name: str, labels: Mapping[str, str]) -> str:
        """A user-defined bridge network, so containers reach each other by alias."""
        with engine_call(f"creating network {name}"):
            self._client.networks.create(name, driver="bridge", labels=dict(labels))
        return name
