"""`kitbuild verify IMAGE`: hold an image to its capacity plan against a real server.

The promise a kitbuild image makes: *it never opens more database connections than its
budget, and under overload it queues requests instead of failing them.* Verify checks it:

1. check  the app image is a kitbuild image; the server image is here (kitbuild/mysql is
          made when missing; another one is pulled if a registry allows): :func:`check_images`
2. start  the server at ``--max-connections``; the image's ``migrate``; the app with
          ``--cpus`` and DATABASE_MAX_CONNECTIONS set to the server's limit; wait for /healthz
3. probe  one GET of ``--path``, which must answer 2xx
4. load   ``--concurrency`` clients (5 x the plan's threads by default) for ``--duration``
          seconds, while one monitor session watches the server; a sampler reads its
          counters every second through that same session (the report's timeline)
5. judge  a pure function of what was measured (:func:`~builder.verify.judge.judge`)

:func:`run_verify` takes its stack, its monitor and its load as parameters; the command
wires the real ones (containers, a server session, HTTP clients) and tests can wire fakes.
"""

from __future__ import annotations

import http.client
import secrets
from typing import TYPE_CHECKING, Protocol

from builder.errors import VerifyError
from builder.image.service_images import MYSQL, MYSQL_IMAGE
from builder.verify.judge import MONITOR_SESSIONS, Measurements, judge
from builder.verify.load import MAX_CONCURRENCY
from builder.verify.report import Report
from builder.verify.sampler import SAMPLE_INTERVAL, Sampler
from builder.verify.server import Credentials
from builder.verify.stack import DATABASE_ALIAS, http_status
from builder.verify.timeline import build_timeline

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from builder.engine import DockerGateway
    from builder.verify.load import LoadResult
    from builder.verify.options import VerifyOptions
    from kitbuild_runtime.events import PlanRecord

#: Exit code of a run whose promise failed (1 is bad input, 2 a bad command line).
EXIT_PROMISE_FAILED = 3

#: Clients per thread of the plan, by default: enough to queue at every thread.
OVERLOAD_FACTOR = 5

#: The label every kitbuild image carries.
KITBUILD_LABEL = "io.kitbuild.version"


class ServingApp(Protocol):
    """An app that answers on a host port and logged its plan."""

    @property
    def port(self) -> int:
        """The host port it answers on."""
        ...

    @property
    def record(self) -> PlanRecord:
        """The plan it logged at start."""
        ...


class Stack(Protocol):
    """Starts the run's server and app; :meth:`close` removes everything it started."""

    def start_database(self, image: str, max_connections: int, credentials: Credentials) -> object:
        """Start the server; return once it is ready."""
        ...

    def run_migrate(self, image: str, environment: Mapping[str, str], *, timeout: float) -> None:
        """Run the image's migrate command to completion."""
        ...

    def start_app(
        self, image: str, environment: Mapping[str, str], *, cpus: float, timeout: float
    ) -> ServingApp:
        """Start the app and return once it is healthy."""
        ...

    def server_port(self) -> int:
        """The host port the server answers on."""
        ...

    def app_running(self) -> bool:
        """Whether the app is still running."""
        ...

    def close(self) -> None:
        """Remove everything the stack started."""
        ...


class Monitor(Protocol):
    """A session on the server that reads its counters during the run."""

    def status(self, name: str) -> int:
        """A global status counter."""
        ...

    def statuses(self, names: Sequence[str]) -> Mapping[str, int]:
        """Several global status counters read at one instant (the sampler's reading)."""
        ...

    def sessions_of(self, user: str) -> int:
        """The open sessions of one account."""
        ...

    def close(self) -> None:
        """End the session."""
        ...


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
        MYSQL.ensure(gateway, say=say)
    elif not gateway.image_exists(options.database_image):
        say(f"kitbuild: {options.database_image} is not here; trying to pull it")
        if not gateway.pull(options.database_image):
            raise VerifyError(
                f"database image {options.database_image} is not here and cannot be pulled: "
                f"pull it where a registry answers, or use {MYSQL_IMAGE} (`kitbuild base`)"
            )


def new_credentials() -> Credentials:
    """Fresh random accounts for one run's server."""
    return Credentials(
        root_password=secrets.token_hex(16),
        user="kitbuild",
        password=secrets.token_hex(16),
        database="kitbuild",
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
    *,
    stack: Stack,
    monitor: Callable[[int, Credentials], Monitor],
    load: Callable[[int, str, int, float], LoadResult],
    say: Callable[[str], None] = print,
    credentials: Credentials | None = None,
    sample_interval: float = SAMPLE_INTERVAL,
) -> Report:
    """Start, probe, load and judge; the stack is closed when this returns or raises.

    ``monitor`` opens a session on the server from its host port and the credentials;
    ``load`` drives (port, path, concurrency, seconds) and returns what the clients saw.
    While it runs, a :class:`~builder.verify.sampler.Sampler` reads the server's counters
    every ``sample_interval`` seconds through the same monitor session.
    """
    credentials = credentials or new_credentials()
    environment = app_environment(options, credentials)
    watching: Monitor | None = None
    try:
        say(
            f"kitbuild: starting {options.database_image} "
            f"(max_connections {options.max_connections})"
        )
        stack.start_database(options.database_image, options.max_connections, credentials)
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
        plan = app.record.plan
        threads = plan.workers * plan.threads
        concurrency = options.concurrency or min(MAX_CONCURRENCY, OVERLOAD_FACTOR * threads)
        watching = monitor(stack.server_port(), credentials)
        refused_before = watching.status("Connection_errors_max_connections")
        say(f"kitbuild: {concurrency} clients on GET {options.path} for {options.duration:g} s")
        sampler = Sampler(watching, interval=sample_interval)
        sampler.start()
        try:
            result = load(app.port, options.path, concurrency, options.duration)
        finally:
            # The session is the sampler's until its thread ends: end it before anyone reads.
            sampler.halt()
        sampling = sampler.stop()
        measured = Measurements(
            plan=app.record,
            load=result,
            max_used_connections=watching.status("Max_used_connections"),
            refused_1040=watching.status("Connection_errors_max_connections") - refused_before,
            app_connections_after=watching.sessions_of(credentials.user),
            app_running=stack.app_running(),
            timeline=build_timeline(
                sampling,
                result.samples,
                refused_before=refused_before,
                own_sessions=MONITOR_SESSIONS,
            ),
        )
    finally:
        if watching is not None:
            watching.close()
        stack.close()
    return Report(options, concurrency, measured, judge(measured))
