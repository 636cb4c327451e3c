"""The deploy contract: what every engine's files say alike, computed once per deployment.

Whatever the engine, the app's containers get the same environment, find the same secret
files under the same directory, answer the same health and liveness paths, may take the
same time to start, have the same time to stop, and plan the same way. :func:`make_contract`
computes all of that once from a :class:`~builder.deploy.description.Deployment`, reading
each app setting with the runtime's own reader (:mod:`kitbuild_runtime.environment`) from
the very environment the containers get, so the files and the containers cannot disagree.

A target module renders a contract; it computes only what its engine alone has (Kubernetes'
pod count and autoscaler, Swarm's update policy and endpoint mode). The targets, and so the
variables kept out of the app's environment, are listed in :mod:`builder.deploy.targets`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from builder.deploy import description
from builder.errors import ConfigError, DeployError
from kitbuild_runtime import environment

if TYPE_CHECKING:
    from collections.abc import Mapping

    from builder.deploy.description import Deployment
    from kitbuild_runtime import capacity

#: Where every app container finds the deployment's secret files: Swarm's default target
#: directory, and where the Kubernetes pods mount their Secret.
SECRETS_MOUNT = "/run/secrets"

#: Seconds a web replica may take to answer its health path once the server and the
#: schema are ready (its waits): Django's setup and gunicorn's start.
STARTUP_SECONDS = 60

#: The Django setting a proxy in front of the app needs, and its value for one that sets
#: X-Forwarded-Proto (kitbuild's nginx, the common ingress controllers).
PROXY_SSL_VARIABLE = "SECURE_PROXY_SSL_HEADER"
PROXY_SSL_HEADER = "HTTP_X_FORWARDED_PROTO,https"

#: Seconds left between the end of gunicorn's graceful timeout and SIGKILL, when the
#: engine chooses the grace period itself.
GRACE_MARGIN = 10


@dataclasses.dataclass(frozen=True)
class Contract:
    """What every target renders alike for one deployment."""

    deployment: Deployment
    #: Every app container's environment: the env file's app variables (sorted), then the
    #: server's address and the *_FILE paths of the secrets.
    environment: Mapping[str, str]
    secrets: tuple[str, ...]  # the secret files the containers mount (the server's too)
    app_secrets: tuple[str, ...]  # those the app's containers mount, read through *_FILE
    health_path: str  # readiness: 200 while the database answers (KIT_HEALTH_PATH)
    live_path: str  # liveness: 200 while a worker can serve (KIT_LIVE_PATH)
    startup_window: int  # seconds from start to the first answer: the waits + STARTUP_SECONDS
    graceful_timeout: int  # GUNICORN_GRACEFUL_TIMEOUT: a stopping worker's last requests
    plan: capacity.Plan  # what each web container computes: workers, threads, connections

    def app_environment(self, *, behind_proxy: bool) -> dict[str, str]:
        """The app's environment, trusting the proxy's X-Forwarded-Proto when one is in front.

        Behind kitbuild's nginx (which always sets the header) or a Kubernetes ingress,
        Django must know a request came in over https, or SECURE_SSL_REDIRECT redirects
        forever: :data:`PROXY_SSL_HEADER` then, unless the env file sets the variable
        itself (empty: not at all). Never where clients reach gunicorn directly: they could
        send the header themselves.
        """
        found = dict(self.environment)
        if behind_proxy and PROXY_SSL_VARIABLE not in self.deployment.variables:
            found[PROXY_SSL_VARIABLE] = PROXY_SSL_HEADER
        return found

    @property
    def secrets_mount(self) -> str:
        """The directory the secret files appear in, inside every container."""
        return SECRETS_MOUNT

    @property
    def secret_paths(self) -> dict[str, str]:
        """Each mounted secret file's path inside the containers."""
        return {name: f"{SECRETS_MOUNT}/{name}" for name in self.secrets}

    def grace_period(self, stop_delay: int = 0, default: int | None = None) -> int:
        """Seconds from the stop signal to SIGKILL; DeployError unless it outlasts the stop.

        A stopping web container first waits ``stop_delay`` (an engine's pause before
        gunicorn is told), then gunicorn finishes its requests for up to the graceful
        timeout. The period is WEB_STOP_GRACE_PERIOD when the file sets it, else
        ``default`` (an engine's own), else the stop plus :data:`GRACE_MARGIN`.
        """
        deployment = self.deployment
        stop = stop_delay + self.graceful_timeout
        given = deployment.stop_grace_period
        grace = given if given is not None else default
        if grace is None:
            return stop + GRACE_MARGIN
        if grace <= stop:
            shown = (
                f"={deployment.variables['WEB_STOP_GRACE_PERIOD'].strip()!r}"
                if given is not None
                else f" (unset, so {grace}s)"
            )
            delay = f"WEB_STOP_DELAY={stop_delay} + " if stop_delay else ""
            raise DeployError(
                f"{deployment.source}: WEB_STOP_GRACE_PERIOD{shown} is out of range: it must "
                f"be longer than {delay}GUNICORN_GRACEFUL_TIMEOUT={self.graceful_timeout}, "
                "or the engine kills replicas still finishing their requests"
            )
        return grace


def make_contract(deployment: Deployment, kept_out: frozenset[str]) -> Contract:
    """The contract for ``deployment``; ``kept_out`` names the variables the app never gets.

    DeployError, naming the file, when a value the containers would refuse is found, or when
    the file names a secret by value.
    """
    description.check_no_secret_values(deployment)
    app_environment = _environment(deployment, kept_out)
    try:
        waits = environment.wait_timeout(app_environment) + environment.migration_wait_timeout(
            app_environment
        )
        graceful_timeout = environment.graceful_timeout(app_environment)
    except ConfigError as error:
        raise DeployError(f"{deployment.source}: {error}") from None
    own_server = deployment.database.image is not None
    app_secrets = tuple(description.APP_SECRETS.values())
    return Contract(
        deployment=deployment,
        environment=app_environment,
        secrets=(description.ROOT_SECRET, *app_secrets) if own_server else app_secrets,
        app_secrets=app_secrets,
        health_path=environment.health_path(app_environment),
        live_path=environment.live_path(app_environment),
        startup_window=waits + STARTUP_SECONDS,
        graceful_timeout=graceful_timeout,
        plan=deployment.plan,
    )


def _environment(deployment: Deployment, kept_out: frozenset[str]) -> dict[str, str]:
    """The env file's variables the app gets, then what the deployment tells it.

    Empty values are left out (the image treats them as unset). The database's figures are
    the parsed ones, so the app and the server's own settings agree.
    """
    database = deployment.database
    own = {
        name: text
        for name, text in deployment.variables.items()
        if name not in kept_out and text.strip()
    }
    return {
        **dict(sorted(own.items())),
        "DATABASE_HOST": database.host,
        "DATABASE_PORT": str(database.port),
        "DATABASE_NAME": database.name,
        "DATABASE_USER": database.user,
        "DATABASE_MAX_CONNECTIONS": str(database.max_connections),
        **{
            f"{variable}_FILE": f"{SECRETS_MOUNT}/{name}"
            for variable, name in description.APP_SECRETS.items()
        },
    }
