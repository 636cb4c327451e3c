"""Serve only on a schema as new as the image: wait until none of its migrations is unapplied.

Orchestrators do not order services (Swarm ignores ``depends_on``; Kubernetes starts a
Deployment's pods beside the migration Job), so ``serve`` orders itself: before gunicorn
starts, and so before the container listens or reports healthy, it asks Django which of the
image's migrations the default database has not applied, and waits until there are none,
for at most KIT_MIGRATION_WAIT_TIMEOUT seconds (0: do not wait). The image's ``migrate``
command, run once per deployment, is what applies them. Image only: it uses Django.
"""

from __future__ import annotations

import time
from typing import Callable

from kitbuild_runtime.errors import SchemaTooOld

#: Seconds between two looks at the database while waiting.
POLL_INTERVAL = 2.0


def unapplied_migrations() -> list[str]:
    """The image's migrations the default database has not applied, as ``app.name``, in order.

    Django's own migration plan, as ``migrate`` computes it (squashed migrations included);
    migrations the database has and the image lacks (a newer schema) do not count.
    """
    from django.db import DatabaseError, connection  # noqa: PLC0415 - image only
    from django.db.migrations.executor import MigrationExecutor  # noqa: PLC0415

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        connection.close()  # the next look starts on a fresh connection
        raise
    return [
        f"{migration.app_label}.{migration.name}" for migration, backwards in plan if not backwards
    ]


def wait_until_migrated(
    timeout: int,
    report: Callable[[list[str]], None],
    *,
    look: Callable[[], list[str]] = unapplied_migrations,
    transient: tuple[type[BaseException], ...] = (),
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until ``look`` finds nothing unapplied; the seconds waited (0.0: no wait).

    ``report`` is called once with the unapplied migrations when a wait begins. Errors in
    ``transient`` (the database dropping a connection) are retried like a non-empty look.
    SchemaTooOld when ``timeout`` seconds pass first.
    """
    started = clock()
    reported = False
    pending: list[str] = []
    while True:
        try:
            pending = look()
        except transient as error:
            pending = pending or [f"(the database did not answer: {type(error).__name__})"]
        else:
            if not pending:
                return clock() - started if reported else 0.0
        if not reported:
            report(pending)
            reported = True
        if clock() - started >= timeout:
            raise SchemaTooOld(
                f"{len(pending)} migration(s) of this image still not applied after {timeout} s "
                f"(KIT_MIGRATION_WAIT_TIMEOUT), first {pending[0]}: run the image's `migrate` "
                "command once against this database (the stack's migrate job), then start again"
            )
        sleep(POLL_INTERVAL)
