"""`kitbuild deploy kubernetes`: manifests that validate, render, and keep every pod in budget.

Offline and without a cluster: each document is checked strictly (unknown fields rejected)
against the Kubernetes OpenAPI schemas of 1.30 and of the newest version
``kubernetes-validate`` bundles, and ``kubectl kustomize`` renders the directory. The
numbers are then read back from the manifests, as a cluster would read them, and
``kitbuild plan`` on those numbers must keep every pod that can hold connections at once
within the budget.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from builder import cli
from builder.deploy.output import MARKER
from tests.test_deploy_description import with_changes

ROOT = Path(__file__).parent.parent
DEPLOY = ROOT / "deploy"

#: The oldest Kubernetes the manifests support, and the newest whose schemas are bundled.
VERSIONS = ("1.30", kubernetes_validate.latest_version())

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not installed"
)


# --------------------------------------------------------------------------------- helpers


def deploy(env_file: Path, output: Path | None) -> tuple[int, str, str]:
    """Run `kitbuild deploy kubernetes`; return the exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["deploy", "kubernetes", "--env-file", str(env_file)]
    if output is not None:
        argv += ["-o", str(output)]
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def documents(folder: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in the directory (the kustomization is not one)."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The documents by kind (each kind appears once)."""
    kinds = [doc["kind"] for doc in docs]
    assert len(set(kinds)) == len(kinds), kinds
    return {doc["kind"]: doc for doc in docs}


def cpus(quantity: str) -> float:
    """A CPU quantity ("1500m", "2") as CPUs."""
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def kitbuild_plan(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """`kitbuild plan ... --json` with ``env`` as the environment, no cgroup limits."""
    out, err = io.StringIO(), io.StringIO()
    empty = Path(tempfile.mkdtemp())
    try:
        code = cli.main(
            ["plan", *argv, "--json", "--cgroup-root", str(empty)], env=env, stdout=out, stderr=err
        )
    finally:
        empty.rmdir()
    assert 0 == code, err.getvalue()
    plan: dict[str, Any] = json.loads(out.getvalue())
    return plan


#: Where the named cases are rendered, once per session; removed when the session ends.
_RENDERS = tempfile.TemporaryDirectory(prefix="kitbuild-k8s-")


@functools.cache
def rendered(case: str) -> Path:
    """The directory `kitbuild deploy kubernetes` wrote for a named case (rendered once)."""
    folder = Path(_RENDERS.name) / case
    folder.mkdir()
    source, changes = CASES[case]
    env_file = with_changes(source, folder, **changes)
    code, _, err = deploy(env_file, folder / "out")
    assert 0 == code, err
    return folder / "out"


#: Each deploy env file, and variations of them: autoscaled, surge, memory, external server.
CASES: dict[str, tuple[Path, dict[str, str | None]]] = {
    "staging": (DEPLOY / "staging.env", {}),
    "production": (DEPLOY / "production.env", {}),
    "production-hpa": (
        DEPLOY / "production.env",
        {"WEB_MIN_REPLICAS": "2", "KIT_REPLICAS": "6", "KIT_MAX_SURGE": "1"},
    ),
    "staging-surge-2": (
        DEPLOY / "staging.env",
        {"KIT_REPLICAS": "2", "KIT_MAX_SURGE": "2", "WEB_CPUS": "0.5"},
    ),
    "production-memory-external": (
        DEPLOY / "production.env",
        {
            "WEB_MEMORY": "300M",
            "DATABASE_HOST": "mysql.example.org",
            "DATABASE_RESERVED_CONNECTIONS": "20",
            "GUNICORN_GRACEFUL_TIMEOUT": "30",
            "WEB_STOP_DELAY": "10",
            "KIT_HEALTH_PATH": "/-/ready",
            "KIT_LIVE_PATH": "/-/live",
            "KUBERNETES_SECRET": "site-db-and-key",
            "DATABASE_WAIT_TIMEOUT": "120",
            "KIT_MIGRATION_WAIT_TIMEOUT": "900",
        },
    ),
}


def read_back(folder: Path) -> dict[str, Any]:
    """The numbers a cluster takes from the manifests, and the pods they let hold connections.

    Peak pods = replicas (the HPA's maxReplicas when there is one) + maxSurge + the pods
    still stopping. The controller does not count terminating pods against maxSurge; they
    are bounded only when a step's pods stop within minReadySeconds (so the next step waits
    for them): then one step (maxSurge + maxUnavailable) stops at a time, plus, with an HPA,
    one scale-down policy's worth per grace period. The asserts check those conditions.
    """
    kinds = by_kind(documents(folder))
    deployment = kinds["Deployment"]["spec"]
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    config = kinds["ConfigMap"]["data"]
    rolling = deployment["strategy"]["rollingUpdate"]
    grace = pod["terminationGracePeriodSeconds"]
    step = rolling["maxSurge"] + rolling["maxUnavailable"]
    assert "RollingUpdate" == deployment["strategy"]["type"]
    assert step >= 1  # the API server refuses a rollout that can change nothing
    assert deployment["minReadySeconds"] >= grace  # one step stops at a time
    assert deployment["progressDeadlineSeconds"] > deployment["minReadySeconds"]
    stopping = step
    hpa = kinds.get("HorizontalPodAutoscaler")
    if hpa is None:
        max_replicas = deployment["replicas"]
    else:
        assert "replicas" not in deployment  # the autoscaler owns it
        max_replicas = hpa["spec"]["maxReplicas"]
        assert 1 <= hpa["spec"]["minReplicas"] <= max_replicas
        down = hpa["spec"]["behavior"]["scaleDown"]
        assert "Min" == down.get("selectPolicy", "Max") or len(down["policies"]) == 1
        for policy in down["policies"]:
            assert ("Pods", True) == (policy["type"], policy["periodSeconds"] >= grace)
        stopping += max(policy["value"] for policy in down["policies"])
    limits = container["resources"]["limits"]
    return {
        "config": config,
        "max_replicas": max_replicas,
        "max_surge": rolling["maxSurge"],
        "pods": max_replicas + rolling["maxSurge"] + stopping,
        "cpus": cpus(limits["cpu"]),
        "memory": limits["memory"].replace("Mi", "M"),
        "max_connections": config["DATABASE_MAX_CONNECTIONS"],
        "grace": grace,
        "stop_delay": container["lifecycle"]["preStop"]["sleep"]["seconds"],
        "container": container,
    }


def check_budget(folder: Path) -> dict[str, Any]:
    """`kitbuild plan` on the manifests' numbers keeps every pod at once within the budget.

    Twice: with the pod count read from the cluster's rules, and as each pod computes it
    (its ConfigMap as its environment, its limits as its cgroup); both must agree.
    """
    numbers = read_back(folder)
    config = numbers["config"]
    limits = ["--cpus", str(numbers["cpus"]), "--memory", numbers["memory"]]
    cluster = kitbuild_plan(
        [
            *limits,
            "--max-connections",
            numbers["max_connections"],
            "--replicas",
            str(numbers["max_replicas"]),
            "--surge",
            str(numbers["pods"] - numbers["max_replicas"]),
        ],
        env=config,
    )
    in_pod = kitbuild_plan(limits, env=config)

    assert numbers["pods"] == cluster["containers"] == in_pod["containers"]
    assert cluster["peak_connections_all"] <= cluster["budget"], cluster
    assert {k: v for k, v in cluster.items() if k != "reasons"} == {
        k: v for k, v in in_pod.items() if k != "reasons"
    }
    return {"numbers": numbers, "plan": cluster}


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_document_validates_strictly(case: str, version: str) -> None:
    """Each generated object passes the version's strict schema: no unknown field, no bad type."""
    docs = documents(rendered(case))

    checked = [kubernetes_validate.validate(doc, version, strict=True) for doc in docs]

    assert len(docs) == len(checked) >= 5


def test_strict_validation_rejects_an_unknown_field() -> None:
    """The check above can fail: a field Kubernetes does not know is refused."""
    deployment = by_kind(documents(rendered("production")))["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["maxSurge"] = 1

    with pytest.raises(kubernetes_validate.ValidationError, match="maxSurge"):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


@needs_kubectl
@pytest.mark.parametrize("case", sorted(CASES))
def test_kubectl_kustomize_renders_the_same_objects(case: str) -> None:
    """`kubectl kustomize DIR` builds the kustomization into exactly the generated objects."""
    folder = rendered(case)

    result = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )

    assert 0 == result.returncode, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(documents(folder), key=key) == sorted(built, key=key)


# ---------------------------------------------------------------------------- the budget


@pytest.mark.parametrize("case", sorted(CASES))
def test_numbers_read_back_keep_every_pod_within_the_budget(case: str) -> None:
    """replicas, maxSurge, maxReplicas, CPU and max_connections from the manifests fit."""
    check_budget(rendered(case))


def test_production_counts_the_pod_a_rollout_step_stops() -> None:
    """production.env (3 replicas, no surge): 4 pods at once, 48 connections each, 192 in all.

    With KIT_MAX_SURGE 0 a step stops one pod before its replacement starts, and that pod
    keeps its connections while it stops: 3 + 0 + 1.
    """
    checked = check_budget(rendered("production"))
    numbers, plan = checked["numbers"], checked["plan"]

    assert (3, 0, 4) == (numbers["max_replicas"], numbers["max_surge"], numbers["pods"])
    assert (4, 12, 48, 192, 192) == (
        plan["workers"],
        plan["threads"],
        plan["peak_connections"],
        plan["peak_connections_all"],
        plan["budget"],
    )
    assert ("3", "1") == (numbers["config"]["KIT_REPLICAS"], numbers["config"]["KIT_MAX_SURGE"])


def test_an_autoscaler_means_kit_replicas_is_max_replicas() -> None:
    """WEB_MIN_REPLICAS turns the HPA on: 2 to 6 pods, + 1 surge + 1 stopping + 1 scaled down."""
    folder = rendered("production-hpa")
    hpa = by_kind(documents(folder))["HorizontalPodAutoscaler"]["spec"]

    numbers = check_budget(folder)["numbers"]

    assert (2, 6, 70) == (
        hpa["minReplicas"],
        hpa["maxReplicas"],
        hpa["metrics"][0]["resource"]["target"]["averageUtilization"],
    )
    assert 9 == numbers["pods"]
    assert "hpa.yaml" in (folder / "kustomization.yaml").read_text()


def test_without_min_replicas_there_is_no_autoscaler() -> None:
    """No WEB_MIN_REPLICAS: no hpa.yaml, and the Deployment sets replicas itself."""
    folder = rendered("staging")

    assert not (folder / "hpa.yaml").exists()
    assert 1 == by_kind(documents(folder))["Deployment"]["spec"]["replicas"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    replicas=st.integers(1, 40),
    surge=st.integers(0, 8),
    min_fraction=st.one_of(st.none(), st.floats(0, 1)),
    cpu_millis=st.sampled_from([100, 250, 500, 1000, 1001, 1500, 2000, 2333, 3250, 8000]),
    max_connections=st.integers(10, 3000),
    memory=st.one_of(st.none(), st.sampled_from(["200M", "1G", "4G"])),
)
def test_any_numbers_are_either_refused_or_kept_within_the_budget(
    replicas: int,
    surge: int,
    min_fraction: float | None,
    cpu_millis: int,
    max_connections: int,
    memory: str | None,
) -> None:
    """Whatever the env file says: the manifests keep every pod in budget, or nothing is written.

    A refusal must be right: `kitbuild plan` for the same pods must find the budget too small.
    """
    min_replicas = None if min_fraction is None else max(1, round(min_fraction * replicas))
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        env_file = with_changes(
            DEPLOY / "production.env",
            folder,
            KIT_REPLICAS=str(replicas),
            KIT_MAX_SURGE=str(surge),
            WEB_MIN_REPLICAS=None if min_replicas is None else str(min_replicas),
            WEB_CPUS=str(cpu_millis / 1000),
            DATABASE_MAX_CONNECTIONS=str(max_connections),
            WEB_MEMORY=memory,
        )
        out = folder / "out"
        code, _, err = deploy(env_file, out)
        if code == 0:
            event("rendered")
            check_budget(out)
            return
        event("refused")
        step = surge or 1
        pods = replicas + surge + step * (2 if min_replicas is not None else 1)
        refused = cli.main(
            [
                "plan",
                "--cpus",
                str(cpu_millis / 1000),
                "--max-connections",
                str(max_connections),
                "--replicas",
                str(replicas),
                "--surge",
                str(pods - replicas),
            ],
            env={},
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        assert (1, 1, False) == (code, refused, out.exists()), err
        assert "budget too small" in err
        assert 1 == err.count("\n")


# ------------------------------------------------------------------------- what pods run


def test_probes_fit_the_runtime() -> None:
    """Startup and readiness ask the database's health path; liveness the process-only one."""
    container = read_back(rendered("production"))["container"]

    assert ("/healthz", "/healthz", "/livez") == (
        container["startupProbe"]["httpGet"]["path"],
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    )


def test_probe_paths_follow_the_env_file() -> None:
    """KIT_HEALTH_PATH and KIT_LIVE_PATH move the probes, and the pods get the same values."""
    numbers = read_back(rendered("production-memory-external"))
    container = numbers["container"]

    assert ("/-/ready", "/-/live") == (
        container["readinessProbe"]["httpGet"]["path"],
        container["livenessProbe"]["httpGet"]["path"],
    )
    assert ("/-/ready", "/-/live") == (
        numbers["config"]["KIT_HEALTH_PATH"],
        numbers["config"]["KIT_LIVE_PATH"],
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_startup_probe_waits_as_long_as_serve_does(case: str) -> None:
    """Startup tolerates the database wait and the wait for the migration Job, and more."""
    numbers = read_back(rendered(case))
    probe = numbers["container"]["startupProbe"]
    config = numbers["config"]
    waits = int(config.get("DATABASE_WAIT_TIMEOUT", "60")) + int(
        config.get("KIT_MIGRATION_WAIT_TIMEOUT", "300")
    )

    assert probe["periodSeconds"] * probe["failureThreshold"] > waits


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_grace_period_outlasts_the_stop_delay_and_gunicorns_graceful_timeout(
    case: str,
) -> None:
    """The grace period > preStop sleep + GUNICORN_GRACEFUL_TIMEOUT (60 when unset)."""
    numbers = read_back(rendered(case))
    graceful = int(numbers["config"].get("GUNICORN_GRACEFUL_TIMEOUT", "60"))

    assert numbers["grace"] > numbers["stop_delay"] + graceful


def test_the_pods_run_locked_down() -> None:
    """Non-root, read-only root with /tmp as emptyDir, no escalation, no capabilities."""
    kinds = by_kind(documents(rendered("production")))
    for pod in (
        kinds["Deployment"]["spec"]["template"]["spec"],
        kinds["Job"]["spec"]["template"]["spec"],
    ):
        (container,) = pod["containers"]
        security = container["securityContext"]
        tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
        volume = next(v for v in pod["volumes"] if v["name"] == tmp["name"])

        assert (True, 10001) == (
            pod["securityContext"]["runAsNonRoot"],
            pod["securityContext"]["runAsUser"],
        )
        assert (True, False, ["ALL"]) == (
            security["readOnlyRootFilesystem"],
            security["allowPrivilegeEscalation"],
            security["capabilities"]["drop"],
        )
        assert "emptyDir" in volume
        assert container["resources"]["limits"] == container["resources"]["requests"]


def test_migrations_run_in_a_job_named_for_the_image() -> None:
    """One Job runs `migrate`; the web pods run `serve`; a new image gets a new Job name."""
    kinds = by_kind(documents(rendered("production")))
    job = kinds["Job"]
    with tempfile.TemporaryDirectory() as temporary:
        env_file = with_changes(DEPLOY / "production.env", Path(temporary), APP_IMAGE="mysite:2.0")
        assert 0 == deploy(env_file, Path(temporary) / "out")[0]
        other = by_kind(documents(Path(temporary) / "out"))["Job"]

    assert ["migrate"] == job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert ["serve"] == kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "mysite:2.0" == other["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job["metadata"]["name"] != other["metadata"]["name"]


def test_secrets_come_from_a_secret_as_files_and_no_value_is_written(tmp_path: Path) -> None:
    """The pods mount the named Secret and read *_FILE; no Secret object, no value, anywhere."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = {"db_password": "pw-7f3a9c1e", "secret_key": "k" * 40 + "-9d2b"}
    for name, text in values.items():
        (secrets / name).write_text(text)
    env_file = with_changes(DEPLOY / "staging.env", tmp_path, SECRETS_DIR=str(secrets))

    assert 0 == deploy(env_file, tmp_path / "out")[0]
    docs = documents(tmp_path / "out")
    text = "".join(path.read_text() for path in (tmp_path / "out").iterdir())
    kinds = by_kind(docs)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    secret_volume = next(v["secret"] for v in pod["volumes"] if "secret" in v)

    assert "Secret" not in kinds
    assert not any(value in text for value in values.values())
    assert "mysite-staging-secrets" == secret_volume["secretName"]
    assert ("/run/secrets/db_password", "/run/secrets/secret_key") == (
        kinds["ConfigMap"]["data"]["DATABASE_PASSWORD_FILE"],
        kinds["ConfigMap"]["data"]["SECRET_KEY_FILE"],
    )
    assert f"--from-file=db_password={secrets}/db_password" in text  # how to create it


def test_configuration_comes_from_the_configmap_without_the_engines_variables() -> None:
    """The pods get the env file's app variables; compose's and the engine's stay out."""
    kinds = by_kind(documents(rendered("production")))
    config = kinds["ConfigMap"]["data"]
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]

    assert [{"configMapRef": {"name": "mysite-production-config"}}] == container["envFrom"]
    assert ("www.example.org,localhost,127.0.0.1", "mysite", "200") == (
        config["ALLOWED_HOSTS"],
        config["DATABASE_USER"],
        config["DATABASE_MAX_CONNECTIONS"],
    )
    assert not {"APP_IMAGE", "SECRETS_DIR", "WEB_CPUS", "COMPOSE_PROJECT_NAME"} & set(config)


def test_an_external_server_is_the_pods_database_host() -> None:
    """DATABASE_HOST in the env file is where the pods connect."""
    config = by_kind(documents(rendered("production-memory-external")))["ConfigMap"]["data"]

    assert ("mysql.example.org", "20") == (
        config["DATABASE_HOST"],
        config["DATABASE_RESERVED_CONNECTIONS"],
    )


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # compose's plan fits (6 containers x 1 connection of 7), Kubernetes' 9 pods do not.
        (
            {"DATABASE_MAX_CONNECTIONS": "10", "KIT_REPLICAS": "3", "KIT_MAX_SURGE": "3"},
            "on Kubernetes 9 pods may hold connections at once (3 KIT_REPLICAS + 3 "
            "KIT_MAX_SURGE + 3 still stopping): budget too small",
        ),
        ({"WEB_MIN_REPLICAS": "4"}, "WEB_MIN_REPLICAS='4' is out of range"),
        ({"WEB_MIN_REPLICAS": "some"}, "WEB_MIN_REPLICAS='some'"),
        ({"WEB_CPU_TARGET": "150"}, "WEB_CPU_TARGET='150' is out of range"),
        ({"WEB_CPUS": "0.0125"}, "WEB_CPUS=0.0125 has more than 3 decimals"),
        ({"WEB_STOP_GRACE_PERIOD": "30s"}, "WEB_STOP_GRACE_PERIOD='30s' is out of range"),
        ({"WEB_STOP_DELAY": "0"}, "WEB_STOP_DELAY='0' is out of range"),
        ({"DATABASE_PASSWORD": "hunter2"}, "DATABASE_PASSWORD holds a secret's value"),
        ({"DATABASE_URL": "mysql://u:p@db/x"}, "DATABASE_URL holds a secret's value"),
        ({"KIT_MIGRATION_WAIT_TIMEOUT": "-5"}, "KIT_MIGRATION_WAIT_TIMEOUT='-5' is out of range"),
        ({"COMPOSE_PROJECT_NAME": "My_Site"}, "'My_Site' (COMPOSE_PROJECT_NAME"),
        ({"KIT_REPLICAS": None}, "KIT_REPLICAS is not set"),
        ({"PORT": "http"}, "PORT='http'"),
    ],
)
def test_bad_env_files_are_one_line_exit_1_and_nothing_written(
    tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    """Each is refused with one line naming the problem; an earlier render stays as it was."""
    out = tmp_path / "out"
    assert 0 == deploy(DEPLOY / "production.env", out)[0]
    before = {path.name: path.read_text() for path in out.iterdir()}
    env_file = with_changes(DEPLOY / "production.env", tmp_path, **changes)

    code, stdout, stderr = deploy(env_file, out)

    assert (1, "") == (code, stdout)
    assert stderr.startswith("kitbuild: error: ")
    assert message in stderr
    assert 1 == stderr.count("\n")
    assert before == {path.name: path.read_text() for path in out.iterdir()}


def test_a_directory_target_needs_o() -> None:
    """Without -o: one line asking for it, exit 1, nothing on stdout."""
    code, stdout, stderr = deploy(DEPLOY / "staging.env", None)

    assert (1, "") == (code, stdout)
    assert "kitbuild: error: this target writes a directory: give -o DIR\n" == stderr


def test_a_rerender_replaces_the_directory_whole(tmp_path: Path) -> None:
    """A render with an HPA, then one without: hpa.yaml goes, the marker stays."""
    out = tmp_path / "out"
    with_hpa = with_changes(DEPLOY / "production.env", tmp_path, WEB_MIN_REPLICAS="1")
    assert 0 == deploy(with_hpa, out)[0]
    assert (out / "hpa.yaml").exists()

    assert 0 == deploy(DEPLOY / "production.env", out)[0]

    assert {
        MARKER,
        "configmap.yaml",
        "deployment.yaml",
        "kustomization.yaml",
        "migrate-job.yaml",
        "pdb.yaml",
        "service.yaml",
    } == {path.name for path in out.iterdir()}
