"""Cleanup by label: what a run left behind, containers and networks alike."""

from __future__ import annotations

import contextlib

import docker.errors

from builder.engine._client import engine_call
from builder.engine._container import Container
from builder.errors import DockerUnavailable, EngineError


class Cleanup:
    """Find and remove the containers and networks that carry a label."""

    def __init__(self, client: docker.DockerClient) -> None:
        """Work through an SDK client."""
        self._client = client

    def labelled(self, key: str, value: str | None) -> list[str]:
        """The names of the containers (any state) and networks labelled ``key[=value]``."""
        selector = {"label": key if value is None else f"{key}={value}"}
        with engine_call("listing labelled containers and networks"):
            containers = self._client.containers.list(all=True, filters=selector)
            networks = self._client.networks.list(filters=selector)
        return [c.name for c in containers] + [n.name for n in networks]

    def remove_labelled(self, key: str, value: str) -> None:
        """Remove every container (with its anonymous volumes) and network labelled key=value."""
        selector = {"label": f"{key}={value}"}
        try:
            with engine_call(f"removing what is labelled {key}={value}"):
                for container in self._client.containers.list(all=True, filters=selector):
                    Container(container).remove()
                for network in self._client.networks.list(filters=selector):
                    with contextlib.suppress(docker.errors.NotFound):
                        network.remove()
        except EngineError as error:
            raise DockerUnavailable(
                f"could not remove the containers labelled {key}={value} "
                f"({error}); remove them with `docker rm -f`"
            ) from None
