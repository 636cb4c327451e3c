"""Benchmark (not a test): kitbuild against a hand-written Dockerfile, and pip against uv.

    python bench/build_times.py [PROJECT] [--rounds N]

In one run, interleaved (the order alternates each round, so drift in the machine's load
hits both alike):

* **builds** of PROJECT by kitbuild and by the baseline, images/bench/baseline.Dockerfile.j2
  (what `docker init` writes, plus collectstatic) on the same bases and the same wheelhouse.
  Cold: every layer rebuilt (no build cache), base images present, kitbuild's wheelhouse
  cache filled. Warm: the same build after one .py file is touched. The project copies are
  git checkouts, as most projects are (kitbuild's creation label comes from the commit).
* **fetching** the wheelhouse on the host: kitbuild's fetch (pip download) with an empty
  and with a filled pip cache, against uv's resolver (`uv pip compile`; uv has no download
  command) with an empty and a filled uv cache.
* **installing** the wheelhouse into a venv in the build image, as the build stage does:
  pip against `uv pip install --no-index --find-links`, each in a fresh container (a
  classic build has no cache mount: every install there is cold), then again in the same
  container with the installer's cache filled. Both installs' package sets are compared.

Prints Markdown. Times on a small, shared machine are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.engine import DockerGateway  # noqa: E402
from builder.image import bases, locks, wheelhouse  # noqa: E402
from builder.templates import render_template  # noqa: E402

KIT_TAG = "kitbuild-bench/kit:latest"
BASELINE_TAG = "kitbuild-bench/baseline:latest"
WHEELHOUSE_TAG = "kitbuild-bench/wheelhouse:latest"
_LIST = (
    "import importlib.metadata as m, json;"
    "print(json.dumps(sorted([d.metadata['Name'].lower(), d.version] for d in m.distributions()"
    " if d.metadata['Name'].lower() not in ('pip', 'setuptools'))))"
)


def git_checkout(source: Path, destination: Path) -> Path:
    """Copy the project and commit it, as a developer's checkout."""
    shutil.copytree(source, destination)
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for argv in (["init", "-q"], ["add", "."], [*identity, "commit", "-qm", "bench"]):
        subprocess.run(["git", *argv], cwd=destination, check=True)
    return destination


def touch(project: Path) -> None:
    """A code-only change: a unique comment appended to the first .py file."""
    first = sorted(project.rglob("*.py"))[0]
    first.write_text(first.read_text() + f"\n# touched {uuid.uuid4()}\n")


def kitbuild(project: Path, *extra: str) -> float:
    """One `kitbuild build`, in its own process as a user runs it; wall-clock seconds."""
    started = time.monotonic()
    command = [sys.executable, "-m", "builder", "build", str(project), "--tag", KIT_TAG]
    subprocess.run([*command, "--quiet", *extra], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def baseline(gateway: DockerGateway, context: Path, *, nocache: bool) -> float:
    """One build of the baseline context with the same engine call; wall-clock seconds."""
    started = time.monotonic()
    gateway.build(context, BASELINE_TAG, network_mode="none", nocache=nocache)
    return time.monotonic() - started


def prepare_baseline(
    gateway: DockerGateway, project: Path, rendered: Path, images: bases.BaseImages, wsgi: str
) -> None:
    """Write the baseline's Dockerfile into the project copy; load the wheelhouse image."""
    holder = rendered.parent / "wheelhouse-image"
    shutil.copytree(rendered / "kitbuild" / "wheels", holder / "wheels")
    (holder / "Dockerfile").write_text("FROM scratch\nCOPY wheels/ /wheels/\n")
    gateway.build(holder, WHEELHOUSE_TAG, network_mode="none")
    shutil.copy(rendered / "kitbuild" / "requirements.txt", project / "requirements.txt")
    dockerfile = render_template(
        "bench/baseline.Dockerfile.j2",
        build_image=images.build,
        runtime_image=images.runtime,
        wheelhouse_image=WHEELHOUSE_TAG,
        wsgi_module=wsgi.rpartition(".")[0],
    )
    (project / "Dockerfile").write_text(dockerfile)
    ignore = (ROOT / "images" / "bench" / "baseline.dockerignore").read_text()
    (project / ".dockerignore").write_text(ignore)


def build_rounds(
    gateway: DockerGateway, kit_project: Path, base_project: Path, rounds: int
) -> dict[str, list[float]]:
    """Cold then warm builds of both, interleaved, the order alternating each round."""
    times: dict[str, list[float]] = {
        k: [] for k in ("kit cold", "base cold", "kit warm", "base warm")
    }
    runners = {
        "kit": lambda cold: kitbuild(kit_project, *(["--no-cache"] if cold else [])),
        "base": lambda cold: baseline(gateway, base_project, nocache=cold),
    }
    for number in range(rounds):
        order = ["kit", "base"] if number % 2 == 0 else ["base", "kit"]
        for name in order:
            times[f"{name} cold"].append(runners[name](True))
        touch(kit_project)
        touch(base_project)
        for name in order:
            times[f"{name} warm"].append(runners[name](False))
        print(
            f"round {number + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
            file=sys.stderr,
        )
    return times


def pins_of(lines: list[str]) -> list[locks.Pin]:
    """The pins of a rendered requirements.txt (``name==version --hash=...``; options skipped)."""
    pins = []
    for line in lines:
        if line.strip() and not line.startswith("-"):
            wanted, *hashes = line.split(" --hash=")
            name, _, version = wanted.strip().partition("==")
            pins.append(locks.Pin(name, version, tuple(h.strip() for h in hashes)))
    return pins


def fetch_times(
    pins: list[locks.Pin], target: wheelhouse.Target, glibc: str, scratch: Path
) -> dict[str, float]:
    """Kitbuild's pip fetch against uv's resolver, each with an empty then a filled cache."""
    requirements = [f"{pin.name}=={pin.version}" for pin in pins]
    results = {}
    pip_cache = scratch / "pip-cache"
    for label, flags in (("cold", ["--no-cache-dir"]), ("warm", [f"--cache-dir={pip_cache}"])):
        if label == "cold":  # fill the cache for the warm run, untimed
            wheelhouse.fetch(
                pins,
                target,
                scratch / "fill",
                pip=_pip_with([f"--cache-dir={pip_cache}"]),
                say=lambda _: None,
            )
        started = time.monotonic()
        wheelhouse.fetch(
            pins, target, scratch / f"pip-{label}", pip=_pip_with(flags), say=lambda _: None
        )
        results[f"pip download (kitbuild's fetch), {label} cache"] = time.monotonic() - started
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    uv_cache = scratch / "uv-cache"
    command = [
        uv,
        "pip",
        "compile",
        "-",
        "--quiet",
        "--no-header",
        f"--python-version={target.python}",
        f"--python-platform={platform.machine()}-manylinux_{glibc.replace('.', '_')}",
    ]
    env = {**os.environ, "MYSQLCLIENT_CFLAGS": "-I/nonexistent", "MYSQLCLIENT_LDFLAGS": "-lmariadb"}
    for label in ("cold", "warm"):
        started = time.monotonic()
        subprocess.run(
            command,
            input="\n".join(requirements),
            text=True,
            check=True,
            capture_output=True,
            env={**env, "UV_CACHE_DIR": str(uv_cache)},
        )
        results[f"uv pip compile (resolve only), {label} cache"] = time.monotonic() - started
    return results


def _pip_with(flags: list[str]) -> wheelhouse.PipRunner:
    def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return wheelhouse.run_pip([args[0], *flags, *args[1:]], env)

    return run


_INSTALL = {
    "pip": "python3 -m venv /opt/venv-{n} && /opt/venv-{n}/bin/pip install -q {cache}"
    " --no-index --find-links /w --requirement /w/requirements.txt",
    "uv": "python3 -m venv --without-pip /opt/venv-{n} && UV_CACHE_DIR=/tmp/uv uv pip install -q"
    " {cache} --python /opt/venv-{n}/bin/python --no-index --find-links /w"
    " --requirement /w/requirements.txt",
}


# Runs in the build image: each install timed by the image's own Python, then the listing.
_TIMED = """
import json, subprocess, sys, time
seconds = []
for command in sys.argv[1:3]:
    started = time.monotonic()
    subprocess.run(["sh", "-c", command], check=True)
    seconds.append(time.monotonic() - started)
print(json.dumps(seconds))
"""


def install_times(
    gateway: DockerGateway, image: str, wheels: Path
) -> tuple[dict[str, float], bool]:
    """Install the wheelhouse with pip, then uv, in the build image: cold, then warm; same set."""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    results, installed = {}, {}
    for tool in ("pip", "uv"):
        cache = "--cache-dir /tmp/pipc" if tool == "pip" else ""
        commands = [_INSTALL[tool].format(n=n, cache=cache) for n in (1, 2)]
        listing = ["/opt/venv-1/bin/python", "-c", _LIST]
        script = 'python3 -c "$0" "$1" "$2" && "$3" "$4" "$5"'
        output = gateway.run(
            image,
            ["sh", "-c", script, _TIMED, *commands, *listing],
            network_mode="none",
            volumes={
                str(wheels): {"bind": "/w", "mode": "ro"},
                uv: {"bind": "/usr/local/bin/uv", "mode": "ro"},
            },
        ).decode()
        lines = output.strip().splitlines()
        cold, warm = json.loads(lines[-2])
        results[f"{tool} install, cold (fresh container)"] = cold
        results[f"{tool} install, warm (its cache filled)"] = warm
        installed[tool] = lines[-1]
    return results, installed["pip"] == installed["uv"]


def main() -> int:
    """Measure and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("project", nargs="?", type=Path, default=ROOT / "examples" / "mysite")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    gateway = DockerGateway.connect()
    subprocess.run([sys.executable, "-m", "builder", "base"], check=True, cwd=ROOT)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory:
        scratch = Path(directory)
        kit_project = git_checkout(args.project, scratch / "kit" / args.project.name)
        base_project = git_checkout(args.project, scratch / "baseline" / args.project.name)
        rendered = scratch / "rendered"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "builder",
                "build",
                str(kit_project),
                "--render-only",
                str(rendered),
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        from builder.image.project import inspect_project  # noqa: PLC0415

        project = inspect_project(kit_project)
        suite = bases.choose_suite(project.django_requirement)
        images = bases.named(suite.name)
        prepare_baseline(gateway, base_project, rendered, images, project.wsgi_application)
        pins = pins_of((rendered / "kitbuild" / "requirements.txt").read_text().splitlines())
        target = wheelhouse.target_for(suite.python, suite.glibc, platform.machine())
        print("fetching and installing: pip against uv", file=sys.stderr)
        fetched = fetch_times(pins, target, suite.glibc, scratch / "fetch")
        wheels = scratch / "install-wheels"
        shutil.copytree(rendered / "kitbuild" / "wheels", wheels)
        shutil.copy(rendered / "kitbuild" / "requirements.txt", wheels / "requirements.txt")
        installs, same = install_times(gateway, images.build, wheels)
        times = build_rounds(gateway, kit_project, base_project, args.rounds)
        kit_size, base_size = gateway.summary(KIT_TAG).size, gateway.summary(BASELINE_TAG).size
        for tag in (KIT_TAG, BASELINE_TAG, WHEELHOUSE_TAG):
            gateway.remove_image(tag)
    gateway.close()
    _print(
        name=args.project.name,
        rounds=args.rounds,
        times=times,
        kit_size=kit_size,
        base_size=base_size,
        fetched=fetched,
        installs=installs,
        same=same,
        elapsed=time.monotonic() - started,
    )
    return 0


def _print(
    *,
    name: str,
    rounds: int,
    times: dict[str, list[float]],
    kit_size: int,
    base_size: int,
    fetched: dict[str, float],
    installs: dict[str, float],
    same: bool,
    elapsed: float,
) -> None:
    def cell(values: list[float]) -> str:
        return ", ".join(f"{v:.1f}" for v in values) + f" (median {statistics.median(values):.1f})"

    print(f"## Build times: {name}, {time.strftime('%Y-%m-%d')}, {rounds} interleaved rounds")
    print(
        f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, shared with other "
        f"builds (noisy: compare within this run only). Whole run: {elapsed / 60:.1f} min.\n"
    )
    print("| build | kitbuild, s | baseline, s | ratio kitbuild / baseline (median) |")
    print("|---|---|---|---:|")
    for kind in ("cold", "warm"):
        kit, base = times[f"kit {kind}"], times[f"base {kind}"]
        ratio = statistics.median(k / b for k, b in zip(kit, base, strict=True))
        label = "cold (no build cache)" if kind == "cold" else "warm (one .py touched)"
        print(f"| {label} | {cell(kit)} | {cell(base)} | {ratio:.2f} |")
    print(f"| image size | {kit_size / 1e6:.0f} MB | {base_size / 1e6:.0f} MB | |\n")
    print("| fetch or install | seconds |\n|---|---:|")
    for label, seconds in {**fetched, **installs}.items():
        print(f"| {label} | {seconds:.1f} |")
    print(f"\nuv and pip installed the same packages and versions: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
