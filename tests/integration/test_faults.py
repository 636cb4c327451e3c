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

import pytest

from builder.engine import DockerGateway
from builder.verify.load import Load
from builder.verify.options import parse_options
from builder.verify.run import app_environment, new_credentials
from builder.verify.server import Credentials, answers
from builder.verify.stack import RunningApp, VerifyStack
from tests.integration.conftest import Built

pytestmark = [pytest.mark.docker, pytest.mark.faults]

PAGE = "/db/sleep/?seconds=0.02"
#: How soon after the server is back the app must serve again.
RECOVERY_SECONDS = 10.0


@pytest.fixture
def stack(
    gateway: DockerGateway, mysite_image: Built, mysql_server_image: str
) -> Iterator[tuple[VerifyStack, RunningApp, Credentials]]:
    """Server (max_connections 40), migrated mysite at one CPU; all removed afterwards."""
    options = parse_options(mysite_image.tag)
    credentials = new_credentials()
    environment = app_environment(options, credentials)
    stack = VerifyStack(gateway, f"faults-{secrets.token_hex(4)}")
    try:
        stack.start_database(mysql_server_image, 40, credentials)
        stack.run_migrate(mysite_image.tag, environment, timeout=120)
        app = stack.start_app(mysite_image.tag, environment, cpus=1.0, timeout=120)
        yield stack, app, credentials
    finally:
        stack.close()


def test_database_restart_under_load_recovers_within_seconds(
    stack: tuple[VerifyStack, RunningApp, Credentials],
) -> None:
    """Restart the server mid-load: requests fail while it is down, then all succeed again.

    Every request started more than RECOVERY_SECONDS after the server answered again must
    succeed, and afterwards a burst as wide as all the app's threads is answered in full:
    no worker is stuck on a dead connection.
    """
    verify_stack, app, credentials = stack
    threads = app.record.plan.workers * app.record.plan.threads
    load = Load(app.port, PAGE, concurrency=3 * threads, duration=30, timeout=20).start()
    time.sleep(5)
    # The engine publishes a restarted container's port anew, on another host port.
    server_port = verify_stack.restart_database()
    deadline = time.monotonic() + 60
    while not answers("127.0.0.1", server_port, user="root", password=credentials.root_password):
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
