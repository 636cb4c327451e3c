"""The deploy contract: every target renders the same app facts, and no deploy variable leaks.

The contract (builder.deploy.contract) is computed once per deployment with the runtime's
own readers; the targets (listed in builder.deploy.targets) render it. These tests hold
every listed target to it without Docker or a cluster: the same app environment, secret
paths, probe paths and start-up window in each engine's files, and none of the variables
that describe the deployment (the shared ones and each target's declared VARIABLES) in any
app container's environment.
"""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from builder.deploy import contract, description, kubernetes, swarm, targets
from builder.errors import DeployError
from kitbuild_runtime import capacity, environment
from tests.test_deploy_description import DEPLOY, with_changes

#: A valid value for every variable a target reads: all are set at once in the leak test
#: (declared or not, so a forgotten declaration leaks and fails it), so each must be one
#: its target accepts.
SAMPLES = {
    "SWARM_ENDPOINT_MODE": "vip",
    "WEB_MIN_REPLICAS": "2",
    "WEB_CPU_TARGET": "60",
    "WEB_STOP_DELAY": "7",
    "KUBERNETES_SECRET": "site-secrets",
}

#: Every variable the app's containers read: a target may mention these freely.
APP_READS = environment.KNOWN_NAMES | {setting.env for setting in capacity.SETTINGS}

#: An environment variable's shape in a target's source: upper case, with an underscore.
_VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    """The three secret files Swarm checks for (their values do not matter here)."""
    directory = tmp_path / "secrets"
    directory.mkdir()
    for name in description.SECRET_FILES:
        (directory / name).write_text(f"{name}-value-0123456789abcdef0123456789\n")
    return directory


def every_target_variable() -> dict[str, str]:
    """Every target's variables (SAMPLES), checked to cover each one a target declares."""
    declared = {name for target in targets.LISTED for name in target.VARIABLES}
    missing = sorted(declared - set(SAMPLES))
    assert not missing, f"add a valid sample value to SAMPLES for {missing}"
    return dict(SAMPLES)


def deployment_with(
    tmp_path: Path, secrets_dir: Path, **changes: str | None
) -> description.Deployment:
    """production.env with every target's variables set, and ``changes``; loaded."""
    settings: dict[str, str | None] = {
        "SECRETS_DIR": str(secrets_dir),
        "WEB_STOP_GRACE_PERIOD": "90s",
        "WEB_MEMORY": "1G",
        **every_target_variable(),
        **changes,
    }
    env = with_changes(DEPLOY / "production.env", tmp_path, **settings)
    return description.load(env)


def mapping_keys(node: object) -> set[str]:
    """Every key of every mapping in a parsed YAML document, at any depth."""
    if isinstance(node, dict):
        return set(map(str, node)).union(*(mapping_keys(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(mapping_keys(item) for item in node))
    return set()


def rendered_keys(target: targets.Target, deployment: description.Deployment) -> set[str]:
    """The mapping keys of everything ``target`` renders: where an environment would show."""
    files = targets.render(target, deployment).files
    return set().union(
        *(mapping_keys(doc) for text in files.values() for doc in yaml.safe_load_all(text))
    )


def undeclared(module: types.ModuleType, source: str, declared: frozenset[str]) -> set[str]:
    """Variable names in the source's strings that no one declares.

    Known are the app's variables, the deployment's and the target's ``declared`` ones; the
    module's own constants (STARTUP_PERIOD) are not variables.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= set(_VARIABLE.findall(node.value))
    known = APP_READS | description.DEPLOYMENT_VARIABLES | declared
    return {
        name
        for name in found
        if name not in known
        and name.removesuffix("_FILE") not in known
        and not hasattr(module, name)
    }


# ------------------------------------------------------------------ nothing leaks


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_no_deployment_variable_reaches_the_apps_environment(
    tmp_path: Path, secrets_dir: Path, name: str
) -> None:
    """With every target's variables set, no target's output gives the app any of them.

    The app's environment is there (ALLOWED_HOSTS), and not one key anywhere in the files is
    a variable kept out of it: the deployment's own, or any target's (declared or not).
    """
    deployment = deployment_with(tmp_path, secrets_dir)

    keys = rendered_keys(targets.TARGETS[name], deployment)

    assert "ALLOWED_HOSTS" in keys
    assert set() == keys & (description.DEPLOYMENT_VARIABLES | set(SAMPLES) | targets.kept_out())


@pytest.mark.parametrize(
    "name", sorted(name for name, target in targets.TARGETS.items() if target.VARIABLES)
)
def test_a_target_that_forgets_its_declaration_is_caught(
    tmp_path: Path, secrets_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without its VARIABLES, a target's settings reach the app's environment.

    So the leak test above fails, naming them, whenever a declaration is forgotten.
    """
    declared = targets.TARGETS[name].VARIABLES
    deployment = deployment_with(tmp_path, secrets_dir)
    monkeypatch.setattr(targets.TARGETS[name], "VARIABLES", frozenset())

    leaked = {
        variable
        for target in targets.LISTED
        for variable in rendered_keys(target, deployment) & declared
    }

    assert declared == leaked


def test_every_variable_a_target_mentions_is_declared() -> None:
    """Each target module names only the app's variables, the deployment's, and its own."""
    found = {
        target.NAME: undeclared(module, inspect.getsource(module), target.VARIABLES)
        for target in targets.LISTED
        for module in [cast("types.ModuleType", target)]
    }

    assert {target.NAME: set() for target in targets.LISTED} == found


def test_the_declaration_check_finds_a_variable_read_but_not_declared() -> None:
    """A target reading NOMAD_REGION without declaring it is found; declared, it is not."""
    module = types.ModuleType("nomad")
    source = 'region = deployment.variables.get("NOMAD_REGION", "global")\n'

    assert ({"NOMAD_REGION"}, set()) == (
        undeclared(module, source, frozenset()),
        undeclared(module, source, frozenset({"NOMAD_REGION"})),
    )


def test_a_target_module_without_variables_is_refused() -> None:
    """targets.table refuses a module that does not declare VARIABLES, naming it."""
    nomad = types.ModuleType("builder.deploy.nomad")
    vars(nomad).update(NAME="nomad", SUMMARY="a job file", render=lambda contract: None)

    with pytest.raises(TypeError, match=r"builder\.deploy\.nomad does not declare VARIABLES"):
        targets.table([*targets.LISTED, nomad])


def test_a_target_may_not_claim_a_variable_the_app_reads() -> None:
    """Declaring KIT_REPLICAS would take it from the app's environment: refused."""
    greedy = types.ModuleType("builder.deploy.greedy")
    vars(greedy).update(
        NAME="greedy",
        SUMMARY="takes too much",
        VARIABLES=frozenset({"KIT_REPLICAS", "GREEDY_MODE"}),
        render=lambda contract: None,
    )

    with pytest.raises(ValueError, match=r"declares \['KIT_REPLICAS'\], which the app reads"):
        targets.table([greedy])


def test_every_listed_target_is_offered_by_the_cli() -> None:
    """The table holds each listed module once, by its name: swarm and kubernetes."""
    assert {"kubernetes": kubernetes, "swarm": swarm} == targets.TARGETS


# ------------------------------------------------------- one contract, every engine


def swarm_app_environment(deployment: description.Deployment) -> dict[str, str]:
    """The web service's environment in the stack file."""
    (text,) = targets.render(swarm, deployment).files.values()
    environment: dict[str, str] = yaml.safe_load(text)["services"]["web"]["environment"]
    return environment


def kubernetes_objects(deployment: description.Deployment) -> dict[str, Any]:
    """The ConfigMap's data and the web container of the Deployment."""
    files = targets.render(kubernetes, deployment).files
    config = yaml.safe_load(files["configmap.yaml"])["data"]
    pod = yaml.safe_load(files["deployment.yaml"])["spec"]["template"]["spec"]
    return {"config": config, "container": pod["containers"][0]}


def test_both_engines_give_the_app_the_same_environment(tmp_path: Path, secrets_dir: Path) -> None:
    """Swarm's environment is Kubernetes' ConfigMap but for the pod counts the pods plan with."""
    deployment = deployment_with(tmp_path, secrets_dir)
    pod_counts = {"KIT_REPLICAS", "KIT_MAX_SURGE"}

    from_swarm = swarm_app_environment(deployment)
    from_kubernetes = kubernetes_objects(deployment)["config"]

    assert {k: v for k, v in from_swarm.items() if k not in pod_counts} == {
        k: v for k, v in from_kubernetes.items() if k not in pod_counts
    }


def test_the_contract_reads_the_app_settings_as_the_runtime_does(
    tmp_path: Path, secrets_dir: Path
) -> None:
    """Probe paths, grace timeout and waits are the runtime's readers' answers, defaults too."""
    deployment = deployment_with(tmp_path, secrets_dir)

    made = contract.make_contract(deployment, targets.kept_out())
    app = made.environment

    assert (
        environment.HEALTH_PATH,
        environment.LIVE_PATH,
        60,
        60 + 300 + contract.STARTUP_SECONDS,
        str(environment.MYSQL_PORT),
    ) == (
        made.health_path,
        made.live_path,
        made.graceful_timeout,
        made.startup_window,
        app["DATABASE_PORT"],
    )
    assert (
        environment.health_path(app),
        environment.live_path(app),
        environment.graceful_timeout(app),
    ) == (made.health_path, made.live_path, made.graceful_timeout)


def test_both_engines_wait_the_contracts_startup_window(tmp_path: Path, secrets_dir: Path) -> None:
    """Swarm's start_period is the window; Kubernetes' startup probe covers it, to a period."""
    deployment = deployment_with(
        tmp_path, secrets_dir, DATABASE_WAIT_TIMEOUT="33", KIT_MIGRATION_WAIT_TIMEOUT="101"
    )
    window = 33 + 101 + contract.STARTUP_SECONDS
    (text,) = targets.render(swarm, deployment).files.values()
    probe = kubernetes_objects(deployment)["container"]["startupProbe"]

    probed = probe["periodSeconds"] * probe["failureThreshold"]

    assert f"{window}s" == yaml.safe_load(text)["services"]["web"]["healthcheck"]["start_period"]
    assert window <= probed < window + probe["periodSeconds"]


def test_both_engines_mount_the_secrets_where_the_environment_says(
    tmp_path: Path, secrets_dir: Path
) -> None:
    """The *_FILE paths are under the contract's mount, where the pods mount their Secret."""
    deployment = deployment_with(tmp_path, secrets_dir)
    made = contract.make_contract(deployment, targets.kept_out())
    container = kubernetes_objects(deployment)["container"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "secrets")

    assert {
        "DATABASE_PASSWORD_FILE": made.secret_paths["db_password"],
        "SECRET_KEY_FILE": made.secret_paths["secret_key"],
    } == {
        name: swarm_app_environment(deployment)[name]
        for name in ("DATABASE_PASSWORD_FILE", "SECRET_KEY_FILE")
    }
    assert (contract.SECRETS_MOUNT, f"{contract.SECRETS_MOUNT}/db_password") == (
        mount["mountPath"],
        made.secret_paths["db_password"],
    )


def test_probe_paths_move_with_the_env_file(tmp_path: Path, secrets_dir: Path) -> None:
    """KIT_HEALTH_PATH and KIT_LIVE_PATH reach the contract, and the probes through it."""
    deployment = deployment_with(
        tmp_path, secrets_dir, KIT_HEALTH_PATH="/-/ready", KIT_LIVE_PATH="/-/live"
    )
    container = kubernetes_objects(deployment)["container"]

    assert ("/-/ready", "/-/ready", "/-/live") == (
        container["startupProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    )


# --------------------------------------------------------------- the grace period


@pytest.mark.parametrize(
    ("changes", "stop_delay", "default", "expected"),
    [
        ({}, 0, None, 60 + contract.GRACE_MARGIN),
        ({}, 5, None, 5 + 60 + contract.GRACE_MARGIN),
        ({}, 0, 70, 70),
        ({"WEB_STOP_GRACE_PERIOD": "1m30s"}, 5, 70, 90),
        ({"GUNICORN_GRACEFUL_TIMEOUT": "30"}, 5, None, 5 + 30 + contract.GRACE_MARGIN),
    ],
)
def test_the_grace_period_is_the_files_else_the_engines_else_the_stop_and_a_margin(
    tmp_path: Path,
    secrets_dir: Path,
    changes: dict[str, str | None],
    stop_delay: int,
    default: int | None,
    expected: int,
) -> None:
    """WEB_STOP_GRACE_PERIOD when set; else the engine's default; else stop + GRACE_MARGIN."""
    deployment = deployment_with(
        tmp_path, secrets_dir, **{"WEB_STOP_GRACE_PERIOD": None, **changes}
    )
    made = contract.make_contract(deployment, targets.kept_out())

    assert expected == made.grace_period(stop_delay, default)


@pytest.mark.parametrize(
    ("changes", "stop_delay", "default", "message"),
    [
        (
            {"WEB_STOP_GRACE_PERIOD": "60s"},
            0,
            None,
            "WEB_STOP_GRACE_PERIOD='60s' is out of range: it must be longer than "
            "GUNICORN_GRACEFUL_TIMEOUT=60,",
        ),
        (
            {"WEB_STOP_GRACE_PERIOD": "65s"},
            5,
            None,
            "WEB_STOP_GRACE_PERIOD='65s' is out of range: it must be longer than "
            "WEB_STOP_DELAY=5 + GUNICORN_GRACEFUL_TIMEOUT=60,",
        ),
        (
            {"WEB_STOP_GRACE_PERIOD": None, "GUNICORN_GRACEFUL_TIMEOUT": "80"},
            0,
            70,
            "WEB_STOP_GRACE_PERIOD (unset, so 70s) is out of range",
        ),
    ],
)
def test_a_grace_period_the_stop_outlasts_is_refused(
    tmp_path: Path,
    secrets_dir: Path,
    changes: dict[str, str | None],
    stop_delay: int,
    default: int | None,
    message: str,
) -> None:
    """A period no longer than the stop delay + graceful timeout: one line naming both."""
    deployment = deployment_with(tmp_path, secrets_dir, **changes)
    made = contract.make_contract(deployment, targets.kept_out())

    with pytest.raises(DeployError) as error:
        made.grace_period(stop_delay, default)

    assert str(error.value).startswith(f"{deployment.source}: {message}")


# ------------------------------------------------------- the runtime's own readers


def test_the_runtime_readers_default_as_the_image_does() -> None:
    """Unset (or empty), the probe paths are /healthz and /livez, the port MySQL's 3306."""
    assert ("/healthz", "/livez", 3306, 60) == (
        environment.health_path({"KIT_HEALTH_PATH": ""}),
        environment.live_path({}),
        environment.database_port({}),
        environment.graceful_timeout({}),
    )


@pytest.mark.parametrize(
    ("changes", "swarm_header", "kubernetes_header"),
    [
        # production.env's own line, with the proxy: as written, on both engines.
        ({}, "HTTP_X_FORWARDED_PROTO,https", "HTTP_X_FORWARDED_PROTO,https"),
        # Unset in the file: behind kitbuild's proxy and an ingress kitbuild sets it ...
        ({"SECURE_PROXY_SSL_HEADER": None}, contract.PROXY_SSL_HEADER, contract.PROXY_SSL_HEADER),
        # ... but not where clients reach gunicorn directly (Swarm without the proxy).
        (
            {"SECURE_PROXY_SSL_HEADER": None, "PROXY_IMAGE": None, "PROXY_PORT": None},
            None,
            contract.PROXY_SSL_HEADER,
        ),
        # Empty in the file: the user turned it off everywhere.
        ({"SECURE_PROXY_SSL_HEADER": ""}, None, None),
    ],
)
def test_the_proxy_ssl_header_is_set_where_a_proxy_is_in_front(
    tmp_path: Path,
    secrets_dir: Path,
    changes: dict[str, str | None],
    swarm_header: str | None,
    kubernetes_header: str | None,
) -> None:
    """Behind kitbuild's nginx or an ingress Django trusts X-Forwarded-Proto; never otherwise."""
    deployment = deployment_with(tmp_path, secrets_dir, **changes)

    from_swarm = swarm_app_environment(deployment).get("SECURE_PROXY_SSL_HEADER")
    from_kubernetes = kubernetes_objects(deployment)["config"].get("SECURE_PROXY_SSL_HEADER")

    assert (swarm_header, kubernetes_header) == (from_swarm, from_kubernetes)
