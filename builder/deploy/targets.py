"""The engines kitbuild deploys to, by name; each renders a Deployment into files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from builder.deploy.description import Deployment
    from builder.deploy.output import Rendered


class Target(Protocol):
    """One engine's renderer (a module satisfies this protocol)."""

    NAME: str
    SUMMARY: str

    def render(self, deployment: Deployment) -> Rendered:
        """The files that deploy ``deployment`` on this engine."""
        ...


#: The targets by name; each engine's module adds itself here.
TARGETS: dict[str, Target] = {}
