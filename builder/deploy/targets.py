"""The engines kitbuild deploys to, listed here and nowhere else.

A target is a module with ``NAME``, ``SUMMARY``, ``VARIABLES`` (the env-file variables only
it reads) and ``render(contract)``. The variables kept out of the app's environment are the
deployment's own (:data:`~builder.deploy.description.DEPLOYMENT_VARIABLES`) and every listed
target's ``VARIABLES``, so a target's settings never reach (nor restart) the app's
containers on any engine. :func:`table` refuses a module that declares none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from builder.deploy import description, kubernetes, swarm
from builder.deploy.contract import make_contract
from kitbuild_runtime import capacity, environment

if TYPE_CHECKING:
    from builder.deploy.contract import Contract
    from builder.deploy.description import Deployment
    from builder.deploy.output import Rendered


class Target(Protocol):
    """One engine's renderer (a module satisfies this protocol)."""

    NAME: str
    SUMMARY: str
    VARIABLES: frozenset[str]  # the env-file variables only this target reads

    def render(self, contract: Contract) -> Rendered:
        """The files that deploy the contract's deployment on this engine."""
        ...


def table(modules: Iterable[Target]) -> dict[str, Target]:
    """The targets by name, each checked to declare what it is and what it reads.

    TypeError for a module without a NAME, SUMMARY, VARIABLES (a frozenset of names) or
    render; ValueError for a name used twice, or for a declared variable the app itself
    reads (keeping it out of the app's environment would change what the app does).
    """
    app_reads = environment.KNOWN_NAMES | {setting.env for setting in capacity.SETTINGS}
    found: dict[str, Target] = {}
    for module in modules:
        label = getattr(module, "__name__", repr(module))
        for attribute in ("NAME", "SUMMARY"):
            if not isinstance(getattr(module, attribute, None), str):
                raise TypeError(f"deploy target {label} has no {attribute} string")
        variables = getattr(module, "VARIABLES", None)
        if not isinstance(variables, frozenset) or not all(isinstance(v, str) for v in variables):
            raise TypeError(
                f"deploy target {label} does not declare VARIABLES, the frozenset of the "
                "env-file variables it reads (frozenset() for none)"
            )
        if not callable(getattr(module, "render", None)):
            raise TypeError(f"deploy target {label} has no render(contract)")
        if module.NAME in found:
            raise ValueError(f"deploy targets {label} and another are both {module.NAME!r}")
        if variables & app_reads:
            raise ValueError(
                f"deploy target {label} declares {sorted(variables & app_reads)}, which the "
                "app reads: its VARIABLES must be the target's own"
            )
        found[module.NAME] = module
    return found


#: The targets, each a module of builder/deploy (a new engine is added here, only here).
LISTED: tuple[Target, ...] = (kubernetes, swarm)

#: The targets by name.
TARGETS = table(LISTED)


def kept_out() -> frozenset[str]:
    """The variables no app container gets: the deployment's own and every target's."""
    return description.DEPLOYMENT_VARIABLES.union(
        *(target.VARIABLES for target in TARGETS.values())
    )


def render(target: Target, deployment: Deployment) -> Rendered:
    """``target``'s files for ``deployment``, rendered from the contract every target shares."""
    return target.render(make_contract(deployment, kept_out()))
