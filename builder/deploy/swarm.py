"""The Docker Swarm target: a stack file for ``docker stack deploy``, from the env file.

The stack (``images/deploy/swarm-stack.yaml.j2``) runs what compose.yaml runs: the app's
``web`` replicas with the env file's CPU limit, its own server (unless DATABASE_HOST names
an external one), a one-shot ``migrate`` job per deploy, and the optional proxy. What every
engine says alike (the app's environment, the secret paths, the start-up window, the grace
period, the plan) comes from the deploy contract (:mod:`builder.deploy.contract`); this
module adds Swarm's own: the update policy, the endpoint mode, the secrets' host files.

Rolling updates. With KIT_MAX_SURGE above 0 a web update is ``start-first`` with
``parallelism`` = KIT_MAX_SURGE: each replacement starts, becomes healthy, then its old
task is stopped. Swarm does not wait for that old task to exit before it starts the next
replacement (swarmkit's updater only sets the old task's desired state), and a stopping
gunicorn holds its connections until its last request ends (up to
GUNICORN_GRACEFUL_TIMEOUT). So the update waits ``delay`` = WEB_STOP_GRACE_PERIOD between
batches: by then the engine has stopped (or killed) the replaced tasks, and at most
KIT_REPLICAS + KIT_MAX_SURGE web containers hold connections, which is what the plan
counts. With no surge the update is ``stop-first``, which Swarm does wait for.

Networking. SWARM_ENDPOINT_MODE=dnsrr (the default) gives ``web`` and ``db`` DNS
round-robin endpoints (their names resolve to the tasks' own addresses; nginx re-resolves
``web`` every 10 s) and publishes ports in ``host`` mode on the node that runs the task.
It needs nothing from the kernel beyond what containers need, so it works wherever
Swarm runs, including engines where the routing mesh and service VIPs do not (this
project's test machine). SWARM_ENDPOINT_MODE=vip gives virtual IPs and ``ingress``
publishing (the routing mesh), for clusters where they work.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import TYPE_CHECKING, Any

from builder.deploy import description
from builder.deploy.output import Rendered
from builder.errors import DeployError
from builder.templates import render_template

if TYPE_CHECKING:
    from builder.deploy.contract import Contract
    from builder.deploy.description import Deployment

NAME = "swarm"
SUMMARY = "a stack file for `docker stack deploy` (stdout, or -o FILE)"
#: The env-file variables only this target reads (kept out of the app's environment).
VARIABLES = frozenset({"SWARM_ENDPOINT_MODE"})

TEMPLATE = "deploy/swarm-stack.yaml.j2"

#: SWARM_ENDPOINT_MODE -> how published ports are published.
PUBLISH_MODES = {"dnsrr": "host", "vip": "ingress"}
DEFAULT_ENDPOINT_MODE = "dnsrr"

#: Seconds Swarm watches each replaced task for a failure before it counts as updated:
#: three failed health checks at a 5 s interval, with room to spare.
MONITOR_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class UpdatePolicy:
    """How Swarm replaces web tasks: in batches of ``parallelism``, ``delay`` s apart."""

    parallelism: int
    order: str  # "start-first" or "stop-first"
    delay: int
    monitor: int

    @property
    def summary(self) -> str:
        """One line for the stack file's header."""
        if self.order == "stop-first":
            return f"stop-first, {self.parallelism} at a time (KIT_MAX_SURGE=0)"
        return (
            f"start-first, {self.parallelism} at a time (KIT_MAX_SURGE), "
            f"{self.delay} s apart (WEB_STOP_GRACE_PERIOD)"
        )


@dataclasses.dataclass(frozen=True)
class SecretFile:
    """One Swarm secret, made by `docker stack deploy` from a file on the deploying host."""

    name: str
    path: str


def update_policy(deployment: Deployment, grace_period: int) -> UpdatePolicy:
    """The web service's update (and rollback) settings for this deployment's surge."""
    if deployment.surge == 0:
        return UpdatePolicy(1, "stop-first", 0, MONITOR_SECONDS)
    return UpdatePolicy(deployment.surge, "start-first", grace_period, MONITOR_SECONDS)


def endpoint_mode(deployment: Deployment) -> str:
    """SWARM_ENDPOINT_MODE: dnsrr (default) or vip."""
    text = deployment.variables.get("SWARM_ENDPOINT_MODE", "").strip() or DEFAULT_ENDPOINT_MODE
    if text not in PUBLISH_MODES:
        raise DeployError(
            f"{deployment.source}: SWARM_ENDPOINT_MODE={text!r} is not a mode: use dnsrr "
            "(DNS round-robin, host-mode ports; works everywhere) or vip (virtual IPs and the "
            "routing mesh, where the cluster provides them)"
        )
    return text


def secret_files(contract: Contract) -> list[SecretFile]:
    """The secrets the stack mounts, checked to exist, with absolute paths for stack deploy."""
    deployment = contract.deployment
    description.check_secrets(deployment, contract.secrets)
    directory = deployment.secrets_dir.absolute()
    return [SecretFile(name, str(directory / name)) for name in contract.secrets]


def notes(deployment: Deployment) -> tuple[str, ...]:
    """What the stack cannot honour from the env file, to say on stderr."""
    found = []
    for name in ("WEB_ADDRESS", "PROXY_ADDRESS"):
        text = deployment.variables.get(name, "").strip()
        try:
            loopback = bool(text) and ipaddress.ip_address(text).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            found.append(
                f"{name}={text} is not applied: Swarm publishes ports on every interface "
                "of the node (firewall them if they must stay private)"
            )
    return tuple(found)


def context(contract: Contract) -> dict[str, Any]:
    """Every value the template needs, checked; DeployError names what is wrong."""
    deployment = contract.deployment
    # Compose's default when the file sets none: the stack stops replicas as compose does.
    grace_period = contract.grace_period(default=description.STOP_GRACE_PERIOD)
    mode = endpoint_mode(deployment)
    database = deployment.database
    return {
        "name": deployment.name,
        "source": deployment.source,
        "plan": contract.plan,
        "replicas": deployment.replicas,
        "surge": deployment.surge,
        "update": update_policy(deployment, grace_period),
        "endpoint_mode": mode,
        "publish_mode": PUBLISH_MODES[mode],
        "secrets_dir": deployment.secrets_dir,
        "secrets": secret_files(contract),
        "secrets_mount": contract.secrets_mount,
        "secret_paths": contract.secret_paths,
        "app_secrets": contract.app_secrets,
        "app_image": deployment.app_image,
        "app_environment": contract.app_environment(behind_proxy=deployment.proxy is not None),
        "database": database if database.image is not None else None,
        "web_cpus": f"{deployment.web_cpus:g}",
        "web_memory": None if deployment.web_memory is None else str(deployment.web_memory),
        "web_port": deployment.web_port if deployment.proxy is None else None,
        "web_start_period": contract.startup_window,
        "stop_grace_period": grace_period,
        "graceful_timeout": contract.graceful_timeout,
        "proxy": deployment.proxy,
    }


def render(contract: Contract) -> Rendered:
    """The stack file, one file (stdout without -o)."""
    deployment = contract.deployment
    text = render_template(TEMPLATE, **context(contract))
    return Rendered(
        {f"{deployment.name}.stack.yaml": text}, directory=False, notes=notes(deployment)
    )
