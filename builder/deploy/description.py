"""A deployment, described once by its env file, and the plan every engine renders from it.

The env file (``deploy/*.env``) is the one description of a deployment: compose reads it
for ``compose.yaml``, and ``kitbuild deploy swarm`` and ``kitbuild deploy kubernetes``
render their own files from the same file. Reading (:func:`read_env_file`) is kept apart
from parsing (:func:`parse_deployment`), and the capacity plan is computed here with the
very module each container plans with (:mod:`kitbuild_runtime.capacity`), so the numbers an
engine is given and the numbers the containers compute cannot disagree.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING

from builder.errors import ConfigError, DeployError, PlanError
from kitbuild_runtime import capacity, environment, values

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The server's root password: only a deployment that runs its own server uses it.
ROOT_SECRET = "db_root_password"
#: The app's secret files, by the variable the app reads each as (through its *_FILE form).
APP_SECRETS = {"DATABASE_PASSWORD": "db_password", "SECRET_KEY": "secret_key"}
#: The secret files a deployment's SECRETS_DIR holds (deploy/make-secrets makes them).
SECRET_FILES = (ROOT_SECRET, *APP_SECRETS.values())

#: compose.yaml's WEB_STOP_GRACE_PERIOD when the file leaves it unset, in seconds.
STOP_GRACE_PERIOD = 70

#: Variables that describe the deployment to kitbuild and compose, not to the app: they
#: stay out of the app containers' environment, so changing one restarts no replica. Each
#: target adds its own (its VARIABLES); builder.deploy.targets keeps them all out.
DEPLOYMENT_VARIABLES = frozenset(
    {
        "DEPLOY_ENV_FILE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_PROFILES",
        "APP_IMAGE",
        "DB_IMAGE",
        "PROXY_IMAGE",
        "SECRETS_DIR",
        "WEB_ADDRESS",
        "WEB_PORT",
        "WEB_CPUS",
        "WEB_MEMORY",
        "WEB_STOP_GRACE_PERIOD",
        "PROXY_ADDRESS",
        "PROXY_PORT",
    }
)

#: Variables whose value is a secret: an orchestrator's file must never carry them, the
#: secret files under SECRETS_DIR do (read through the *_FILE variables).
SECRET_VARIABLES = ("DATABASE_PASSWORD", "DATABASE_URL", "SECRET_KEY")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Database:
    """The deployment's MySQL-compatible server: its own (``image``), or an external one."""

    image: str | None  # DB_IMAGE: a server the deployment runs itself; None when external
    host: str  # "db" for its own server, DATABASE_HOST for an external one
    port: int
    name: str
    user: str
    max_connections: int


@dataclasses.dataclass(frozen=True)
class Proxy:
    """The optional nginx proxy in front of the web replicas."""

    image: str
    address: str
    port: int


@dataclasses.dataclass(frozen=True)
class Deployment:
    """One deployment: what runs, how big, and the plan every container of it will compute."""

    name: str
    source: Path  # the env file
    variables: Mapping[str, str]  # every variable in the file (the app's environment too)
    app_image: str
    database: Database
    replicas: int  # KIT_REPLICAS: the most web containers that run at once, surge aside
    surge: int  # KIT_MAX_SURGE: extra web containers a rolling update may add
    web_cpus: float
    web_memory: int | None  # WEB_MEMORY: each web container's memory limit, if set
    secrets_dir: Path
    proxy: Proxy | None
    plan: capacity.Plan
    # Added for the rolling updates of orchestrators.
    stop_grace_period: int | None = None  # WEB_STOP_GRACE_PERIOD, seconds; None when unset
    web_port: int | None = None  # WEB_PORT: where web is published when there is no proxy


def read_env_file(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of an env file, as compose reads them (no quotes, no ``$``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeployError(
            f"env file {path} not found: give --env-file deploy/ENVIRONMENT.env"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise DeployError(f"cannot read env file {path}: {reason}") from None
    found: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not _NAME.match(name):
            raise DeployError(f"{path}:{number}: {raw.strip()!r} is not a NAME=value line")
        found[name] = value.strip()
    return found


def parse_deployment(variables: Mapping[str, str], source: Path) -> Deployment:
    """Check an env file's variables and plan the deployment; DeployError names what is wrong.

    Relative paths (SECRETS_DIR) are taken from the current directory, as compose takes
    them from the directory of compose.yaml.
    """
    where = str(source)

    def given(name: str) -> str | None:
        text = variables.get(name, "").strip()
        return text or None

    def required(name: str, meaning: str) -> str:
        text = given(name)
        if text is None:
            raise DeployError(f"{where}: {name} is not set: {meaning}")
        return text

    try:
        replicas_text = required(
            "KIT_REPLICAS", "the most web containers that run at once (e.g. KIT_REPLICAS=3)"
        )
        replicas = values.whole("KIT_REPLICAS", replicas_text, 1, 10_000, "web containers")
        surge = values.whole(
            "KIT_MAX_SURGE",
            given("KIT_MAX_SURGE") or "0",
            0,
            10_000,
            "extra web containers during a rolling update",
        )
        web_cpus = values.cpus("WEB_CPUS", required("WEB_CPUS", "each web container's CPU limit"))
        memory_text = given("WEB_MEMORY")
        web_memory = None if memory_text is None else values.size("WEB_MEMORY", memory_text)
        max_connections = values.whole(
            "DATABASE_MAX_CONNECTIONS",
            required("DATABASE_MAX_CONNECTIONS", "the server's max_connections"),
            10,
            100_000,
            "the server's max_connections",
        )
        external = given("DATABASE_HOST")
        database = Database(
            image=None if external else given("DB_IMAGE") or "kitbuild/mysql:latest",
            host=external or "db",
            port=environment.database_port(variables),
            name=required("DATABASE_NAME", "the database the app uses"),
            user=required("DATABASE_USER", "the account the app logs in as"),
            max_connections=max_connections,
        )
        proxy = None
        if given("PROXY_IMAGE") or given("PROXY_PORT"):
            proxy = Proxy(
                image=given("PROXY_IMAGE") or "kitbuild/nginx:latest",
                address=given("PROXY_ADDRESS") or "0.0.0.0",
                port=values.whole(
                    "PROXY_PORT", given("PROXY_PORT") or "8080", 1, 65535, "the proxy's port"
                ),
            )
        plan = plan_for(variables, web_cpus, memory_text)
        grace_text = given("WEB_STOP_GRACE_PERIOD")
        stop_grace_period = (
            None
            if grace_text is None
            else values.duration(
                "WEB_STOP_GRACE_PERIOD",
                grace_text,
                1,
                3600,
                "time from SIGTERM to SIGKILL for a web container",
            )
        )
        web_port_text = given("WEB_PORT")
        web_port = (
            None
            if web_port_text is None
            else values.whole("WEB_PORT", web_port_text, 1, 65535, "web's published port")
        )
    except (ConfigError, PlanError) as error:
        raise DeployError(f"{where}: {error}") from None
    required("ALLOWED_HOSTS", "the host names the site answers to")
    return Deployment(
        name=given("COMPOSE_PROJECT_NAME") or source.stem,
        source=source,
        variables=dict(variables),
        app_image=required("APP_IMAGE", "the image `kitbuild PROJECT` built"),
        database=database,
        replicas=replicas,
        surge=surge,
        web_cpus=web_cpus,
        web_memory=web_memory,
        secrets_dir=Path(required("SECRETS_DIR", "the directory of the secret files")),
        proxy=proxy,
        plan=plan,
        stop_grace_period=stop_grace_period,
        web_port=web_port,
    )


def plan_for(
    variables: Mapping[str, str],
    web_cpus: float,
    web_memory: str | None = None,
    *,
    memory_source: str = "WEB_MEMORY",
) -> capacity.Plan:
    """The plan each web container will compute: its limits, the file's other settings.

    Every capacity setting the file gives (KIT_REPLICAS, KIT_MAX_SURGE,
    DATABASE_MAX_CONNECTIONS, DATABASE_RESERVED_CONNECTIONS, KIT_MAX_THREADS ...) is read
    the way the entrypoint reads it; the CPU and memory limits are WEB_CPUS and WEB_MEMORY,
    which the engine sets as the container's cgroup limits (``memory_source`` names a
    memory limit the engine's generator chose itself). PlanError when the budget cannot
    hold every container.
    """
    flags = {"cpus": str(web_cpus), "memory": web_memory}
    settings, sources = capacity.read_settings(flags, variables)
    sources["cpus"] = "WEB_CPUS"
    if web_memory is not None:
        sources["memory"] = memory_source
    return capacity.make_plan(settings, capacity.Limits(cgroup_version="none"), sources)


def check_secrets(deployment: Deployment, names: tuple[str, ...] = SECRET_FILES) -> None:
    """Every secret file the deployment mounts exists and is not empty."""
    for name in names:
        path = deployment.secrets_dir / name
        if not path.is_file() or path.stat().st_size == 0:
            raise DeployError(
                f"{deployment.source}: secret file {path} is missing or empty: make it with "
                f"`deploy/make-secrets {deployment.secrets_dir}`"
            )


def check_no_secret_values(deployment: Deployment) -> None:
    """The env file names no secret by value: an engine's file would carry it in clear."""
    for name in SECRET_VARIABLES:
        if deployment.variables.get(name, "").strip():
            raise DeployError(
                f"{deployment.source}: {name} holds a secret's value, which would be written "
                f"into the deployment's files: remove it and keep the secret in "
                f"{deployment.secrets_dir} (deploy/make-secrets), read through *_FILE"
            )


def load(path: Path) -> Deployment:
    """Read and parse an env file."""
    return parse_deployment(read_env_file(path), path)
