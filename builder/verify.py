"""`kitbuild verify IMAGE`: hold an image to its capacity plan against a real server.

The promise a kitbuild image makes: *it never opens more database connections than its
budget, and under overload it queues requests instead of failing them.* Verify checks it:

1. check  the app image is a kitbuild image; the server image is here (kitbuild/mysql is
          made when missing; another one is pulled if a registry allows)
2. start  a network; the server at ``--max-connections`` (testcontainers' MySqlContainer);
          the image's ``migrate``; the app with ``--cpus`` and DATABASE_MAX_CONNECTIONS set
          to the server's limit; wait for /healthz
3. probe  one GET of ``--path``, which must answer 2xx
4. load   ``--concurrency`` clients (5 x the plan's threads by default) for ``--duration``
          seconds, while one monitor session watches the server
5. judge  a pure function of what was measured (:func:`judge`)

Everything started is removed at the end, also on failure and on Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import http.client
import math
import os
import secrets
from typing import TYPE_CHECKING, Any

import pymysql

from builder.load import MAX_CONCURRENCY, Load, LoadResult
from builder.mysql_image import MYSQL_IMAGE, ensure_mysql_image
from builder.verify_stack import DATABASE_ALIAS, Credentials, VerifyError, VerifyStack, http_status

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from builder.docker_gateway import DockerGateway

#: Exit code of a run whose promise failed (1 is bad input, 2 a bad command line).
EXIT_PROMISE_FAILED = 3

#: Clients per thread of the plan, by default: enough to queue at every thread.
OVERLOAD_FACTOR = 5

#: The label every kitbuild image carries.
KITBUILD_LABEL = "io.kitbuild.version"

#: Sessions verify itself holds on the server during the load (the monitor).
MONITOR_SESSIONS = 1

#: MariaDB accepts max_connections from 10 to 100000.
MAX_CONNECTIONS_RANGE = (10, 100_000)


@dataclasses.dataclass(frozen=True)
class VerifyOptions:
    """What to verify, and how hard; :func:`parse_options` makes one from strings."""

    image: str
    database_image: str = MYSQL_IMAGE
    max_connections: int = 40
    cpus: float = 1.0
    path: str = "/healthz"
    duration: float = 15.0
    concurrency: int | None = None  # None: OVERLOAD_FACTOR x the plan's threads
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)
    startup_timeout: float = 120.0


def parse_options(
    image: str,
    *,
    database_image: str = MYSQL_IMAGE,
    max_connections: str = "40",
    cpus: str = "1",
    path: str = "/healthz",
    duration: str = "15",
    concurrency: str | None = None,
    env: Sequence[str] = (),
    host_cpus: int | None = None,
) -> VerifyOptions:
    """Check every option before anything starts; a bad one is one VerifyError line."""
    low, high = MAX_CONNECTIONS_RANGE
    connections = _whole("--max-connections", max_connections, low, high)
    host = host_cpus or os.cpu_count() or 1
    limit = _number("--cpus", cpus)
    if not 0.01 <= limit <= host:
        raise VerifyError(f"--cpus {cpus}: use a number from 0.01 to {host} (this machine's CPUs)")
    seconds = _number("--duration", duration)
    if not 1 <= seconds <= 600:
        raise VerifyError(f"--duration {duration}: use 1 to 600 seconds")
    clients = (
        None if concurrency is None else _whole("--concurrency", concurrency, 1, MAX_CONCURRENCY)
    )
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise VerifyError(f"--path {path!r}: give a path such as /healthz or /items/?page=2")
    return VerifyOptions(
        image=image,
        database_image=database_image,
        max_connections=connections,
        cpus=limit,
        path=path,
        duration=seconds,
        concurrency=clients,
        environment=_environment(env),
    )


def _whole(flag: str, text: str, low: int, high: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise VerifyError(f"{flag} {text!r}: give a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise VerifyError(f"{flag} {number}: use {low} to {high}")
    return number


def _number(flag: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise VerifyError(f"{flag} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise VerifyError(f"{flag} {text!r} is not a finite number")
    return number


def _environment(pairs: Sequence[str]) -> dict[str, str]:
    environment: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.isidentifier():
            raise VerifyError(f"--env {pair!r}: write it as NAME=VALUE")
        environment[name] = value
    return environment


# --------------------------------------------------------------------------- judging


@dataclasses.dataclass(frozen=True)
class Measurements:
    """What one run saw: the app's plan, the load's outcome and the server's counters."""

    plan: Mapping[str, Any]
    load: LoadResult
    max_used_connections: int  # the server's high-water mark, verify's monitor included
    refused_1040: int  # Connection_errors_max_connections during the run
    app_connections_after: int  # the app account's sessions once the load ended
    app_running: bool  # whether the app container was still up at the end

    @property
    def app_peak(self) -> int:
        """The app's most connections at once: the high-water mark less verify's monitor."""
        return max(0, self.max_used_connections - MONITOR_SESSIONS)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Pass or fail, with one reason per broken promise."""

    passed: bool
    failures: tuple[str, ...]


def judge(measured: Measurements) -> Verdict:
    """Say whether the run kept every promise; each broken one gets a reason."""
    failures: list[str] = []
    budget = int(measured.plan["budget"])
    if measured.app_peak > budget:
        failures.append(
            f"the app held {measured.app_peak} connections at once, over its budget of {budget}"
        )
    if measured.refused_1040:
        failures.append(
            f"the server refused {measured.refused_1040} connections "
            "with error 1040 (Too many connections)"
        )
    load = measured.load
    if load.failed:
        failures.append(
            f"{load.failed} of {load.total} requests failed "
            f"(statuses {_counts(load.statuses)}; no answer {_counts(load.exceptions)})"
        )
    if load.ok == 0:
        failures.append("no request was answered")
    if not measured.app_running:
        failures.append("the app container stopped during the run")
    return Verdict(not failures, tuple(failures))


def _counts(counts: Mapping[Any, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"


# --------------------------------------------------------------------------- reporting


@dataclasses.dataclass(frozen=True)
class Report:
    """A finished run: the options, the measurements and the verdict."""

    options: VerifyOptions
    concurrency: int
    measured: Measurements
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data for ``--json``."""
        load, plan = self.measured.load, self.measured.plan
        return {
            "image": self.options.image,
            "database_image": self.options.database_image,
            "max_connections": self.options.max_connections,
            "cpus": self.options.cpus,
            "plan": {key: value for key, value in plan.items() if key != "event"},
            "load": {
                "path": self.options.path,
                "concurrency": self.concurrency,
                "duration": self.options.duration,
                "seconds": round(load.seconds, 3),
            },
            "requests": load.total,
            "ok": load.ok,
            "failed": load.failed,
            "statuses": {str(k): v for k, v in sorted(load.statuses.items())},
            "no_answer": load.exceptions,
            "requests_per_second": round(load.ok / load.seconds, 1) if load.seconds else 0.0,
            "latency_p50": round(load.percentile(0.5), 4),
            "latency_p99": round(load.percentile(0.99), 4),
            "max_used_connections": self.measured.max_used_connections,
            "monitor_sessions": MONITOR_SESSIONS,
            "app_peak_connections": self.measured.app_peak,
            "budget": int(plan["budget"]),
            "errors_1040": self.measured.refused_1040,
            "app_connections_after_load": self.measured.app_connections_after,
            "app_running": self.measured.app_running,
            "passed": self.verdict.passed,
            "failures": list(self.verdict.failures),
        }

    def as_text(self) -> str:
        """The human-readable report."""
        data = self.as_dict()
        plan = self.measured.plan
        lines = [
            f"kitbuild verify {self.options.image} against {self.options.database_image}",
            f"  server    max_connections {self.options.max_connections}; "
            f"app --cpus {self.options.cpus:g}",
            f"  plan      {plan['workers']} workers x {plan['threads']} threads: "
            f"at most {plan['peak_connections_all']} connections; budget {plan['budget']} "
            f"({plan['max_connections']} - {plan['reserved']} reserved)",
            f"  load      GET {self.options.path}, {self.concurrency} clients for "
            f"{self.options.duration:g} s",
            f"  requests  {data['requests']} (ok {data['ok']}, failed {data['failed']}), "
            f"{data['requests_per_second']} req/s, p50 {data['latency_p50']:.3f} s, "
            f"p99 {data['latency_p99']:.3f} s",
            f"  server    Max_used_connections {data['max_used_connections']} "
            f"(app {data['app_peak_connections']} + {MONITOR_SESSIONS} verify session), "
            f"refused with 1040: {data['errors_1040']}",
        ]
        if self.verdict.passed:
            lines.append(
                "  verdict   PASS: the app stayed within its budget and answered every request"
            )
        else:
            lines.append("  verdict   FAIL: " + "; ".join(self.verdict.failures))
        return "\n".join(lines)


# --------------------------------------------------------------------------- running


class ServerMonitor:
    """One root session on the run's server, open for the whole load, reading its counters."""

    def __init__(self, port: int, credentials: Credentials) -> None:
        """Connect as root over the server's published port."""
        try:
            self._connection = pymysql.connect(
                host="127.0.0.1",
                port=port,
                user="root",
                password=credentials.root_password,
                connect_timeout=10,
                read_timeout=30,
                autocommit=True,
            )
        except pymysql.MySQLError as error:
            raise VerifyError(f"cannot watch the server: {error.args[-1]}") from None
        self._user = credentials.user

    def status(self, name: str) -> int:
        """A global status counter, such as Max_used_connections."""
        row = self._one("SHOW GLOBAL STATUS LIKE %s", name)
        return int(row[1]) if row else 0

    def sessions_of_app(self) -> int:
        """The app account's open sessions."""
        row = self._one(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = %s", self._user
        )
        return int(row[0]) if row else 0

    def reset_high_water_mark(self) -> None:
        """FLUSH STATUS: Max_used_connections restarts from the sessions open now."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute("FLUSH STATUS")
        except pymysql.MySQLError as error:
            raise VerifyError(f"lost the monitor session to the server: {error}") from None

    def close(self) -> None:
        """End the session."""
        self._connection.close()

    def _one(self, sql: str, argument: str) -> tuple[Any, ...] | None:
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, (argument,))
                row = cursor.fetchone()
        except pymysql.MySQLError as error:
            raise VerifyError(f"lost the monitor session to the server: {error}") from None
        return None if row is None else tuple(row)


def check_images(
    options: VerifyOptions, gateway: DockerGateway, say: Callable[[str], None]
) -> None:
    """The app image is a local kitbuild image; the server image is here (or made/pulled)."""
    if not gateway.image_exists(options.image):
        raise VerifyError(
            f"image {options.image} not found locally: build it with "
            f"`kitbuild PROJECT --tag {options.image}`"
        )
    if KITBUILD_LABEL not in gateway.summary(options.image).labels:
        raise VerifyError(
            f"{options.image} is not a kitbuild image (it has no {KITBUILD_LABEL} label): "
            "build it with `kitbuild PROJECT`"
        )
    if options.database_image == MYSQL_IMAGE:
        ensure_mysql_image(gateway, say=say)
    elif not gateway.image_exists(options.database_image):
        say(f"kitbuild: {options.database_image} is not here; trying to pull it")
        if not gateway.pull(options.database_image):
            raise VerifyError(
                f"database image {options.database_image} is not here and cannot be pulled: "
                f"pull it where a registry answers, or use {MYSQL_IMAGE} (`kitbuild base`)"
            )


def app_environment(options: VerifyOptions, credentials: Credentials) -> dict[str, str]:
    """What the app is told: the run's server, its limit, fresh keys; ``--env`` on top."""
    return {
        "DATABASE_HOST": DATABASE_ALIAS,
        "DATABASE_NAME": credentials.database,
        "DATABASE_USER": credentials.user,
        "DATABASE_PASSWORD": credentials.password,
        "DATABASE_MAX_CONNECTIONS": str(options.max_connections),
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **options.environment,
    }


def run_verify(
    options: VerifyOptions,
    gateway: DockerGateway,
    *,
    say: Callable[[str], None] = print,
    run_id: str | None = None,
) -> Report:
    """Run every stage; the containers are gone when this returns or raises."""
    check_images(options, gateway, say)
    credentials = Credentials(
        root_password=secrets.token_hex(16),
        user="kitbuild",
        password=secrets.token_hex(16),
        database="kitbuild",
    )
    environment = app_environment(options, credentials)
    stack = VerifyStack(gateway, run_id or secrets.token_hex(6))
    monitor: ServerMonitor | None = None
    try:
        say(
            f"kitbuild: starting {options.database_image} "
            f"(max_connections {options.max_connections})"
        )
        server_port = stack.start_database(
            options.database_image, options.max_connections, credentials
        )
        say(f"kitbuild: migrating with {options.image}")
        stack.run_migrate(options.image, environment, timeout=options.startup_timeout)
        say(f"kitbuild: starting {options.image} (--cpus {options.cpus:g})")
        app = stack.start_app(
            options.image, environment, cpus=options.cpus, timeout=options.startup_timeout
        )
        try:
            status = http_status(app.port, options.path, timeout=30)
        except (OSError, http.client.HTTPException) as error:
            raise VerifyError(f"GET {options.path} got no answer: {error!r}") from None
        if not 200 <= status < 300:
            raise VerifyError(
                f"GET {options.path} answered {status} before any load: pass --path a page "
                "of the project that uses the database (the default /healthz always does)"
            )
        threads = int(app.plan["workers"]) * int(app.plan["threads"])
        concurrency = options.concurrency or min(MAX_CONCURRENCY, OVERLOAD_FACTOR * threads)
        monitor = ServerMonitor(server_port, credentials)
        refused_before = monitor.status("Connection_errors_max_connections")
        say(f"kitbuild: {concurrency} clients on GET {options.path} for {options.duration:g} s")
        load = Load(
            app.port, options.path, concurrency=concurrency, duration=options.duration
        ).start()
        try:
            result = load.join()
        finally:
            load.stop()
        measured = Measurements(
            plan=app.plan,
            load=result,
            max_used_connections=monitor.status("Max_used_connections"),
            refused_1040=monitor.status("Connection_errors_max_connections") - refused_before,
            app_connections_after=monitor.sessions_of_app(),
            app_running=stack.app_running(),
        )
    finally:
        if monitor is not None:
            monitor.close()
        stack.close()
    return Report(options, concurrency, measured, judge(measured))
