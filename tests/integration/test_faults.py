"""Faults under load: the database restarts while the app is overloaded.

The run's containers come from verify's own :class:`VerifyStack` (the same server, migrate
and app a `kitbuild verify` run starts). The other fault the issue names, SIGTERM to the
app during load, is `test_stop_during_load_answers_every_request_it_accepted` in
test_runtime.py: every request the app accepted is answered.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pymysql
import pytest

from builder.docker_gateway import DockerGateway
from builder.load import Load
from builder.verify import app_environment, parse_options
from builder.verify_stack import Credentials, RunningApp, VerifyStack
from tests.integration.conftest import Built

pytestmark = pytest.mark.docker

PAGE = "/db/sleep/?seconds=0.02"
#: How soon after the server is back the app must serve again.
RECOVERY_SECONDS = 10.0


@pytest.fixture
def stack(
    gateway: DockerGateway, mysite_image: Built, mysql_server_image: str
) -> Iterator[tuple[VerifyStack, RunningApp, int, Credentials]]:
    """Server (max_connections 40), migrated mysite at one CPU; all removed afterwards."""
    options = parse_options(mysite_image.tag)
    credentials = Credentials(secrets.token_hex(8), "kitbuild", secrets.token_hex(8), "kitbuild")
    environment = app_environment(options, credentials)
    stack = VerifyStack(gateway, f"faults-{secrets.token_hex(4)}")
    try:
        server_port = stack.start_database(mysql_server_image, 40, credentials)
        stack.run_migrate(mysite_image.tag, environment, timeout=120)
        app = stack.start_app(mysite_image.tag, environment, cpus=1.0, timeout=120)
        yield stack, app, server_port, credentials
    finally:
        stack.close()


def server_answers(port: int, credentials: Credentials) -> bool:
    """Whether the server accepts a login and answers SELECT 1."""
    try:
        connection = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="root",
            password=credentials.root_password,
            connect_timeout=2,
        )
    except pymysql.MySQLError:
        return False
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def test_database_restart_under_load_recovers_within_seconds(
    stack: tuple[VerifyStack, RunningApp, int, Credentials],
) -> None:
    """Restart the server mid-load: requests fail while it is down, then all succeed again.

    Every request started more than RECOVERY_SECONDS after the server answered again must
    succeed, and afterwards a burst as wide as all the app's threads is answered in full:
    no worker is stuck on a dead connection.
    """
    verify_stack, app, server_port, credentials = stack
    threads = int(app.plan["workers"]) * int(app.plan["threads"])
    load = Load(app.port, PAGE, concurrency=3 * threads, duration=30, timeout=20).start()
    time.sleep(5)
    # The engine publishes a restarted container's port anew, on another host port.
    server_port = verify_stack.restart_database()
    deadline = time.monotonic() + 60
    while not server_answers(server_port, credentials):
        assert time.monotonic() < deadline, "the server did not come back within 60 s"
        time.sleep(0.2)
    back = time.monotonic()
    result = load.join()

    after_recovery = [s for s in result.samples if s.started > back + RECOVERY_SECONDS]
    failed_after = [s for s in after_recovery if s.status != 200]
    recovered = [s.finished for s in result.samples if s.started > back and s.status == 200]
    assert after_recovery, result.summary()
    assert [] == failed_after[:5], result.summary()
    assert recovered, result.summary()
    print(
        f"first success {min(recovered) - back:.2f} s after the server was back; {result.summary()}"
    )
    burst = Load(app.port, PAGE, concurrency=threads, duration=3).run()
    assert burst.failed == 0, burst.summary()
    assert verify_stack.app_running()
