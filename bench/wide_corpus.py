"""Benchmark (not a test): build, migrate, serve and probe a wide corpus of Django projects.

    python bench/wide_corpus.py --projects /work/wide-corpus [--only NAME ...]
                                [--table bench/wide-corpus.md] [--logs DIR] [--remove-images]

The projects are public Django applications, each exported unmodified into
``PROJECTS/<name>/`` beforehand (this script fetches nothing). What each one needs is data
in bench/wide_corpus.toml: its upstream and commit, how it declares its dependencies, the
`kitbuild build` flags its own docs and kitbuild's README lead a new user to, the build
and container environments, and the pages to request with the statuses expected.

One project at a time (the machine has 2 cores), the script:

1. builds the tree with the ``kitbuild`` command (the wall time and the image's size are
   measured, the whole output goes to ``LOGS/<name>.build.log``);
2. starts a fresh kitbuild/mysql on a private network and runs the image's ``migrate``;
3. starts the image (``serve``), waits for ``/healthz``, and requests every listed page on
   127.0.0.1, without following redirects;
4. removes every container and the network it started (also on failure and Ctrl-C).

It writes one row per project to the Markdown table and the same results as JSON beside
it (``.json``). A run with ``--only`` replaces those projects' rows and keeps the others.
A project's ``diagnosis`` in the data file (the cause found by reading its code, and
whose fault it is) is printed with the automatic one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.engine import DockerGateway  # noqa: E402
from builder.errors import EngineError, VerifyError  # noqa: E402
from builder.image.service_images import MYSQL_IMAGE  # noqa: E402
from builder.verify.run import new_credentials  # noqa: E402
from builder.verify.stack import DATABASE_ALIAS, VerifyStack  # noqa: E402
from tests.corpus.corpus import (  # noqa: E402
    Page,
    build_arguments,
    fill,
    matches,
    read_tables,
    rsa_private_key,
)

DATA_FILE = Path(__file__).with_name("wide_corpus.toml")
TAG_REPOSITORY = "kitbuild-wide"
MAX_CONNECTIONS = 60
BUILD_TIMEOUT = 1800.0
MIGRATE_TIMEOUT = 900.0
START_TIMEOUT = 180.0
_KEYS = {
    "upstream",
    "commit",
    "declares",
    "flags",
    "build_env",
    "env",
    "headers",
    "pages",
    "diagnosis",
}

SERVES = "serves"
FAILS_BUILD = "fails at build"
FAILS_MIGRATE = "fails at migrate"
FAILS_START = "fails at start"
PAGES_WRONG = "pages wrong"
MISSING = "not run"


@dataclasses.dataclass(frozen=True)
class Project:
    """One project of the data file: where it comes from and what it needs."""

    name: str
    upstream: str
    commit: str
    declares: str
    flags: tuple[str, ...]
    build_env: dict[str, str]
    env: dict[str, str]
    headers: dict[str, str]
    pages: tuple[Page, ...]
    diagnosis: str | None

    def build_arguments(self, values: dict[str, str]) -> list[str]:
        """The flags, then one ``--build-env`` per variable, placeholders filled in."""
        return build_arguments(self.flags, self.build_env, values)

    def shown_flags(self) -> str:
        """The flags as a table cell (the build environment by its names only)."""
        parts = list(self.flags) + [f"--build-env {name}=…" for name in self.build_env]
        return " ".join(parts) if parts else "(none)"


@dataclasses.dataclass(frozen=True)
class Run:
    """What every project of one run shares: the engine, the placeholders, the folders."""

    gateway: DockerGateway
    values: dict[str, str]  # $secret_key, $rsa_key
    projects: Path  # the folder of project trees
    logs: Path  # one log per project
    remove_images: bool


@dataclasses.dataclass
class Outcome:
    """What one run of one project measured."""

    name: str
    upstream: str
    commit: str
    declares: str
    flags: str
    result: str = MISSING
    build_seconds: float | None = None
    size_mb: float | None = None
    pages_ok: int = 0
    pages_total: int = 0
    error: str | None = None  # the automatic cause: kitbuild's line, migrate's, the pages'
    diagnosis: str | None = None  # the cause found by hand, from the data file
    failed_pages: list[str] = dataclasses.field(default_factory=list)

    def cause(self, limit: int = 400) -> str:
        """The table's last cell: the error seen (cut at ``limit``) and its diagnosis.

        The JSON keeps the whole error; a lock's list of pins does not fit in a cell.
        """
        error = self.error or ""
        if len(error) > limit:
            error = error[:limit] + " …"
        parts = [part for part in (error, self.diagnosis) if part]
        return " — ".join(parts)


def load_projects(path: Path = DATA_FILE) -> list[Project]:
    """Read the data file; an unknown key is an error, not silently ignored."""
    projects = []
    for name, table in read_tables(path, _KEYS):
        projects.append(
            Project(
                name=name,
                upstream=str(table["upstream"]),
                commit=str(table["commit"]),
                declares=str(table["declares"]),
                flags=tuple(table.get("flags", ())),
                build_env=dict(table.get("build_env", {})),
                env=dict(table.get("env", {})),
                headers=dict(table.get("headers", {})),
                pages=tuple(Page(**page) for page in table["pages"]),
                diagnosis=table.get("diagnosis"),
            )
        )
    return projects


def error_line(text: str) -> str:
    """The CLI's one error line (the last ``kitbuild: error:`` line, else the last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("kitbuild: error:")]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "(no output)"


def build(project: Project, tree: Path, tag: str, values: dict[str, str], log: Path) -> Outcome:
    """Run `kitbuild build` on the tree; measure its wall time and the image's size."""
    outcome = new_outcome(project)
    command = ["kitbuild", "build", str(tree), "--tag", tag]
    command += project.build_arguments(values)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as output:
        output.write("$ " + " ".join(command) + "\n")
        output.flush()
        try:
            completed = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            code = completed.returncode
        except subprocess.TimeoutExpired:
            code = -1
            output.write(f"\nwide_corpus: the build did not finish in {BUILD_TIMEOUT:.0f} s\n")
    outcome.build_seconds = round(time.monotonic() - started, 1)
    if code != 0:
        outcome.result = FAILS_BUILD
        outcome.error = error_line(log.read_text(encoding="utf-8", errors="replace"))
    return outcome


def new_outcome(project: Project) -> Outcome:
    """An empty outcome carrying the project's fixed columns."""
    return Outcome(
        name=project.name,
        upstream=project.upstream,
        commit=project.commit,
        declares=project.declares,
        flags=project.shown_flags(),
        diagnosis=project.diagnosis,
    )


def get(port: int, page: Page, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """GET a page on 127.0.0.1 without following redirects: status, Location, body's start."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("GET", page.path, headers={"Connection": "close", **headers})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or "", response.read()[:200]
    finally:
        connection.close()


def first_traceback(logs: str, limit: int = 4000) -> str:
    """The logs from their first traceback on (the error, not what follows it)."""
    start = logs.find("Traceback (most recent call last)")
    return logs[start : start + limit] if start >= 0 else logs[-limit:]


def serve_and_probe(project: Project, tag: str, outcome: Outcome, run: Run, log: Path) -> None:
    """Migrate on a fresh kitbuild/mysql, serve, probe the pages; always clean up."""
    values = run.values
    credentials = new_credentials()
    database_url = (
        f"mysql://{credentials.user}:{credentials.password}"
        f"@{DATABASE_ALIAS}:3306/{credentials.database}"
    )
    environment = {
        "DATABASE_URL": database_url,
        "DATABASE_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "SECRET_KEY": values["secret_key"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **{
            name: fill(text, {**values, "database_url": database_url})
            for name, text in project.env.items()
        },
    }
    gateway = run.gateway
    stack = VerifyStack(gateway, f"wide-{project.name}-{secrets.token_hex(3)}")
    notes: list[str] = []
    try:
        stack.start_database(MYSQL_IMAGE, MAX_CONNECTIONS, credentials)
        try:
            stack.run_migrate(tag, environment, timeout=MIGRATE_TIMEOUT)
        except VerifyError as error:
            outcome.result, outcome.error = FAILS_MIGRATE, str(error)
            notes.append(app_logs(gateway, stack))
            return
        try:
            app = stack.start_app(tag, environment, cpus=1.0, timeout=START_TIMEOUT)
        except VerifyError as error:
            outcome.result, outcome.error = FAILS_START, str(error)
            notes.append(app_logs(gateway, stack))
            return
        outcome.pages_total = len(project.pages)
        for page in project.pages:
            try:
                status, location, body = get(app.port, page, project.headers)
            except (OSError, http.client.HTTPException) as error:
                outcome.failed_pages.append(f"{page.path}: {error}")
                continue
            if matches(page, status, location):
                outcome.pages_ok += 1
            else:
                shown = f" -> {location}" if location else ""
                outcome.failed_pages.append(f"{page.path} {status}{shown} (expected {page.status})")
                notes.append(f"{page.path} {status}{shown}: {body!r}")
        if outcome.failed_pages:
            outcome.result = PAGES_WRONG
            outcome.error = "; ".join(outcome.failed_pages)
            notes.append(first_traceback(app.container.logs()))
        else:
            outcome.result = SERVES
    finally:
        with log.open("a", encoding="utf-8") as output:
            output.write("\n".join(notes) + "\n")
        stack.close()


def app_logs(gateway: DockerGateway, stack: VerifyStack) -> str:
    """The logs of the run's app containers (migrate, serve), for the project's log file."""
    found: list[str] = []
    with contextlib.suppress(EngineError):
        for container in gateway.containers(stack.labels):
            if container.inspect().get("Config", {}).get("Image") != MYSQL_IMAGE:
                found.append(first_traceback(container.logs(), limit=8000))
    return "\n".join(found)


def run_project(project: Project, run: Run) -> Outcome:
    """Build, migrate, serve and probe one project; its image is kept unless asked not to."""
    gateway = run.gateway
    tree = run.projects / project.name
    if not tree.is_dir():
        outcome = new_outcome(project)
        outcome.error = f"no tree at {tree}"
        return outcome
    tag = f"{TAG_REPOSITORY}/{project.name}:latest"
    log = run.logs / f"{project.name}.log"
    print(f"== {project.name}: building {tree}", flush=True)
    outcome = build(project, tree, tag, run.values, log)
    if outcome.result == FAILS_BUILD:
        return outcome
    outcome.size_mb = round(gateway.summary(tag).size / 1e6)
    print(f"== {project.name}: built in {outcome.build_seconds:.0f} s, serving", flush=True)
    try:
        serve_and_probe(project, tag, outcome, run, log)
    finally:
        if run.remove_images:
            with contextlib.suppress(EngineError):
                gateway.remove_image(tag)
    return outcome


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def table(outcomes: list[Outcome]) -> str:
    """The results as a Markdown table, one row per project."""
    lines = [
        "| project | upstream @ commit | declares | flags | build (s) | size (MB) | result "
        "| cause |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        seconds = "—" if outcome.build_seconds is None else f"{outcome.build_seconds:.0f}"
        size = "—" if outcome.size_mb is None else f"{outcome.size_mb:.0f}"
        result = outcome.result
        if outcome.pages_total:
            result += f" ({outcome.pages_ok}/{outcome.pages_total} pages)"
        lines.append(
            f"| {outcome.name} | {outcome.upstream} @ {outcome.commit[:12]} "
            f"| {cell(outcome.declares)} | `{cell(outcome.flags)}` | {seconds} | {size} "
            f"| {result} | {cell(outcome.cause())} |"
        )
    return "\n".join(lines) + "\n"


def merge(previous: Path, fresh: list[Outcome], order: list[str]) -> list[Outcome]:
    """The fresh outcomes over the earlier JSON's, in the data file's order."""
    known: dict[str, Outcome] = {}
    if previous.is_file():
        for row in json.loads(previous.read_text(encoding="utf-8")):
            fields = {field.name for field in dataclasses.fields(Outcome)}
            known[row["name"]] = Outcome(**{k: v for k, v in row.items() if k in fields})
    known.update({outcome.name: outcome for outcome in fresh})
    return [known[name] for name in order if name in known]


def write_results(outcomes: list[Outcome], table_path: Path, projects: list[Project]) -> None:
    """Write the Markdown table and, beside it, the same results as JSON.

    Each row's diagnosis is taken afresh from the data file: it is written by hand after a
    run, and is not a measurement.
    """
    json_path = table_path.with_suffix(".json")
    merged = merge(json_path, outcomes, [project.name for project in projects])
    diagnoses = {project.name: project.diagnosis for project in projects}
    for outcome in merged:
        outcome.diagnosis = diagnoses.get(outcome.name)
    data: list[dict[str, Any]] = [dataclasses.asdict(outcome) for outcome in merged]
    json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    table_path.write_text(table(merged), encoding="utf-8")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=Path, required=True, help="folder of project trees")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these projects")
    parser.add_argument("--table", type=Path, default=ROOT / "bench" / "wide-corpus.md")
    parser.add_argument("--logs", type=Path, default=Path("/tmp/wide-corpus-logs"))
    parser.add_argument("--data", type=Path, default=DATA_FILE, help="the projects' data file")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="build nothing: rewrite the table from the JSON and the data file's diagnoses",
    )
    parser.add_argument(
        "--remove-images", action="store_true", help="remove each image after its probe"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen projects one at a time; write the table after each."""
    options = parse_arguments(argv)
    os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
    if shutil.which("kitbuild") is None:
        print("wide_corpus: no kitbuild on PATH (activate the venv)", file=sys.stderr)
        return 2
    projects = load_projects(options.data)
    order = [project.name for project in projects]
    chosen = [p for p in projects if not options.only or p.name in options.only]
    unknown = set(options.only or ()) - set(order)
    if unknown:
        print(f"wide_corpus: not in the data file: {sorted(unknown)}", file=sys.stderr)
        return 2
    if options.report_only:
        write_results([], options.table, projects)
        print(options.table.read_text(encoding="utf-8"))
        return 0
    options.logs.mkdir(parents=True, exist_ok=True)
    values = {
        "secret_key": secrets.token_urlsafe(48),
        "rsa_key": rsa_private_key(),
    }
    gateway = DockerGateway.connect()
    run = Run(gateway, values, options.projects, options.logs, options.remove_images)
    outcomes: list[Outcome] = []
    try:
        for project in chosen:
            outcome = run_project(project, run)
            print(f"== {project.name}: {outcome.result} {outcome.error or ''}", flush=True)
            outcomes.append(outcome)
            write_results(outcomes, options.table, projects)
    except KeyboardInterrupt:
        print("wide_corpus: interrupted; containers removed", file=sys.stderr)
        return 130
    finally:
        gateway.close()
    print(table(merge(options.table.with_suffix(".json"), outcomes, order)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
