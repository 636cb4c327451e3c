"""`kitbuild deploy kubernetes`: a directory for ``kubectl apply -k``, sized by the plan.

The pods that can hold database connections at once are counted by one rule
(:func:`count_pods`), and the manifests are written so that the cluster keeps to it:

* a rollout replaces ``maxSurge + maxUnavailable`` pods per step (``maxUnavailable`` is 0,
  or 1 when ``KIT_MAX_SURGE`` is 0, since Kubernetes needs one of them above 0). The
  controller does not count terminating pods against ``maxSurge``, and an old pod keeps its
  connections until it exits, up to ``terminationGracePeriodSeconds`` after it was told to
  stop. ``minReadySeconds`` equal to that grace period paces the steps: a new pod counts as
  available (letting the next old pods go) only after the previous step's pods are gone. So
  at most one step's pods are stopping at any time;
* with a HorizontalPodAutoscaler, ``KIT_REPLICAS`` is its ``maxReplicas``, and its
  scale-down removes at most one step's worth of pods per grace period, which may stop
  while a rollout's do: one more step is counted.

Peak pods = maxReplicas + maxSurge + stopping pods. The pods plan with exactly that count
(their ConfigMap's ``KIT_REPLICAS`` and ``KIT_MAX_SURGE``), and an env file whose budget
cannot give each of them one thread is refused. What every engine says alike (the app's
environment, the secret paths, the probes' paths, the start-up window, the grace period)
comes from the deploy contract (:mod:`builder.deploy.contract`). No manifest text lives
here: the files are rendered from ``images/deploy/kubernetes/*.j2``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from typing import TYPE_CHECKING

from builder.deploy import description
from builder.deploy.output import Rendered
from builder.errors import ConfigError, DeployError, PlanError
from builder.image.context import APP_UID
from builder.templates import render_template
from kitbuild_runtime import capacity, environment, values

if TYPE_CHECKING:
    from collections.abc import Mapping

    from builder.deploy.contract import Contract
    from builder.deploy.description import Deployment

NAME = "kubernetes"
SUMMARY = "a directory for `kubectl apply -k`: Deployment, migration Job, Service, PDB, HPA"
#: The env-file variables only this target reads (kept out of the app's environment).
VARIABLES = frozenset({"WEB_MIN_REPLICAS", "WEB_CPU_TARGET", "WEB_STOP_DELAY", "KUBERNETES_SECRET"})

TEMPLATES = "deploy/kubernetes"

#: Seconds between startup probes; the startup window is a whole number of them.
STARTUP_PERIOD = 5
#: The longest period an HPA scaling policy may have (autoscaling/v2).
HPA_MAX_PERIOD = 1800

#: Object names: DNS-1035 labels, short enough for the suffixes added to them.
_OBJECT_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class Pods:
    """The pods that can hold connections at once, by where they come from."""

    max_replicas: int  # KIT_REPLICAS: the Deployment's replicas, or the HPA's maxReplicas
    min_replicas: int | None  # the HPA's minReplicas; None without an HPA
    max_surge: int  # the rollout's extra pods (KIT_MAX_SURGE)
    max_unavailable: int  # 0, or 1 when max_surge is 0
    stopping: int  # pods told to stop that may still hold their connections

    @property
    def total(self) -> int:
        """Every pod at once: the count each pod plans with."""
        return self.max_replicas + self.max_surge + self.stopping

    @property
    def step(self) -> int:
        """Old pods a rollout step stops: maxSurge + maxUnavailable."""
        return self.max_surge + self.max_unavailable


def count_pods(replicas: int, surge: int, min_replicas: int | None) -> Pods:
    """The Kubernetes budget rule: replicas + surge + the pods still stopping.

    Valid only with the pacing the manifests set (``minReadySeconds`` = grace period, and an
    HPA scale-down policy of one step per grace period); see the module's docstring.
    """
    unavailable = 0 if surge > 0 else 1
    step = surge + unavailable
    return Pods(
        max_replicas=replicas,
        min_replicas=min_replicas,
        max_surge=surge,
        max_unavailable=unavailable,
        stopping=step * (2 if min_replicas is not None else 1),
    )


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a pod starts and stops, in seconds."""

    stop_delay: int  # preStop sleep: endpoints drop the pod before gunicorn hears SIGTERM
    graceful_timeout: int  # gunicorn's GUNICORN_GRACEFUL_TIMEOUT
    grace_period: int  # terminationGracePeriodSeconds, also minReadySeconds
    startup_failures: int  # startupProbe failureThreshold, at STARTUP_PERIOD seconds

    @property
    def startup_window(self) -> int:
        """Seconds a pod may take to answer its health path before it is restarted."""
        return self.startup_failures * STARTUP_PERIOD


@dataclasses.dataclass(frozen=True)
class KubernetesDeployment:
    """Everything the manifests say beyond the contract, computed once from it."""

    contract: Contract
    name: str
    pods: Pods
    timing: Timing
    cpu_millis: int
    memory: int  # bytes: the limit and the request
    cpu_target: int  # the HPA's average CPU utilisation target, percent
    config: Mapping[str, str]  # the ConfigMap: the app's environment, as each pod sees it
    secret: str
    port: int
    plan: capacity.Plan  # what every pod computes from its config and limits


def _whole(variables: Mapping[str, str], name: str, default: int, high: int, meaning: str) -> int:
    """A whole number variable from 1 to ``high``, or its default."""
    text = variables.get(name, "").strip()
    return default if not text else values.whole(name, text, 1, high, meaning)


def _timing(contract: Contract, delay: int) -> Timing:
    """The stop delay, gunicorn's graceful timeout and the grace period that covers both."""
    # The preStop sleep counts inside the grace period, so the period must cover both.
    grace = contract.grace_period(stop_delay=delay)
    failures = math.ceil(contract.startup_window / STARTUP_PERIOD)
    return Timing(delay, contract.graceful_timeout, grace, failures)


def _memory_quantity(count: int) -> str:
    """A byte count as Kubernetes writes it: Mi when whole, else bytes."""
    mebibyte = 1024 * 1024
    return f"{count // mebibyte}Mi" if count % mebibyte == 0 else str(count)


def _check_name(deployment: Deployment) -> str:
    """The deployment's name, if it can name every object (Service names are DNS-1035)."""
    if not _OBJECT_NAME.match(deployment.name):
        raise DeployError(
            f"{deployment.source}: {deployment.name!r} (COMPOSE_PROJECT_NAME, or the file's "
            "name) cannot name Kubernetes objects: use lower-case letters, digits and '-', "
            "starting with a letter, at most 40 characters"
        )
    return deployment.name


def plan_kubernetes(contract: Contract) -> KubernetesDeployment:
    """Count the pods, size them, and check the budget holds them all; DeployError if not."""
    deployment = contract.deployment
    where = deployment.source
    variables = deployment.variables
    name = _check_name(deployment)
    try:
        min_text = variables.get("WEB_MIN_REPLICAS", "").strip()
        min_replicas = (
            None
            if not min_text
            else values.whole(
                "WEB_MIN_REPLICAS",
                min_text,
                1,
                deployment.replicas,
                f"the autoscaler's fewest pods, at most KIT_REPLICAS={deployment.replicas}",
            )
        )
        cpu_target = _whole(variables, "WEB_CPU_TARGET", 70, 100, "percent of WEB_CPUS")
        delay = _whole(variables, "WEB_STOP_DELAY", 5, 300, "seconds before SIGTERM (preStop)")
        port = environment.port(contract.environment)
    except ConfigError as error:
        raise DeployError(f"{where}: {error}") from None
    timing = _timing(contract, delay)
    if min_replicas is not None and timing.grace_period > HPA_MAX_PERIOD:
        raise DeployError(
            f"{where}: the grace period {timing.grace_period} s is longer than an "
            f"autoscaler's longest policy period ({HPA_MAX_PERIOD} s): lower "
            "GUNICORN_GRACEFUL_TIMEOUT or WEB_STOP_GRACE_PERIOD, or unset WEB_MIN_REPLICAS"
        )
    cpu_millis = deployment.web_cpus * 1000
    if abs(cpu_millis - round(cpu_millis)) > 1e-6:  # 1.001 x 1000 is 1000.9999999999999
        raise DeployError(
            f"{where}: WEB_CPUS={deployment.web_cpus:g} has more than 3 decimals: Kubernetes "
            "counts CPUs in thousandths (e.g. 1.5 or 0.25)"
        )
    pods = count_pods(deployment.replicas, deployment.surge, min_replicas)
    config = {
        # The Service is cluster-internal: requests come through an ingress, which sets
        # X-Forwarded-Proto.
        **contract.app_environment(behind_proxy=True),
        # The pods plan for every pod at once: see count_pods.
        "KIT_REPLICAS": str(pods.max_replicas),
        "KIT_MAX_SURGE": str(pods.max_surge + pods.stopping),
    }
    memory, plan = _size(deployment, config, pods)
    return KubernetesDeployment(
        contract=contract,
        name=name,
        pods=pods,
        timing=timing,
        cpu_millis=round(cpu_millis),
        memory=memory,
        cpu_target=cpu_target,
        config=dict(sorted(config.items())),
        secret=variables.get("KUBERNETES_SECRET", "").strip() or f"{name}-secrets",
        port=port,
        plan=plan,
    )


def _size(
    deployment: Deployment, config: Mapping[str, str], pods: Pods
) -> tuple[int, capacity.Plan]:
    """The memory limit and the plan every pod computes under it and its CPU limit.

    Without WEB_MEMORY the limit is one worker's memory more than the plan's workers need
    (gunicorn's master and the entrypoint), so memory never lowers the worker count.
    """
    web_memory = deployment.variables.get("WEB_MEMORY", "").strip() or None
    try:
        plan = description.plan_for(config, deployment.web_cpus, web_memory)
        if web_memory is not None:
            return values.size("WEB_MEMORY", web_memory), plan
        worker = capacity.read_settings({}, config)[0].worker_memory
        memory = (plan.workers + 1) * worker
        sized = description.plan_for(
            config,
            deployment.web_cpus,
            str(memory),
            memory_source="the pod's memory limit ((workers + 1) x KIT_WORKER_MEMORY)",
        )
    except PlanError as error:
        raise DeployError(
            f"{deployment.source}: on Kubernetes {pods.total} pods may hold connections at "
            f"once ({pods.max_replicas} KIT_REPLICAS + {pods.max_surge} KIT_MAX_SURGE + "
            f"{pods.stopping} still stopping): {error}"
        ) from None
    return memory, sized


def _digest(*parts: object) -> str:
    """A short stable digest: the pod template's config hash, the migration Job's suffix."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def render(contract: Contract) -> Rendered:
    """The kustomization and its manifests, every number from :func:`plan_kubernetes`."""
    kube = plan_kubernetes(contract)
    deployment = contract.deployment
    config_hash = _digest(kube.config)
    context = {
        "contract": contract,
        "kube": kube,
        "pods": kube.pods,
        "timing": kube.timing,
        "plan": kube.plan,
        "source": str(deployment.source),
        "secrets_dir": str(deployment.secrets_dir),
        "image": deployment.app_image,
        "uid": APP_UID,
        "cpu": f"{kube.cpu_millis}m",
        "memory": _memory_quantity(kube.memory),
        "config_hash": config_hash,
        "job": f"{kube.name}-migrate-{_digest(deployment.app_image, config_hash)}",
        "autoscaled": kube.pods.min_replicas is not None,
        "progress_deadline": kube.timing.grace_period + kube.timing.startup_window + 120,
        "STARTUP_PERIOD": STARTUP_PERIOD,
    }
    names = ["configmap.yaml", "deployment.yaml", "migrate-job.yaml", "service.yaml", "pdb.yaml"]
    if context["autoscaled"]:
        names.append("hpa.yaml")
    files = {name: render_template(f"{TEMPLATES}/{name}.j2", **context) for name in names}
    files["kustomization.yaml"] = render_template(
        f"{TEMPLATES}/kustomization.yaml.j2", resources=names, **context
    )
    return Rendered(files, directory=True)
