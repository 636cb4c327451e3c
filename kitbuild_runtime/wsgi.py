"""The WSGI callable gunicorn serves: the project's application, plus a health endpoint.

/healthz (KIT_HEALTH_PATH) answers without touching the project's URLconf: 200 when a
`SELECT 1` through Django's default database works, 503 when it does not (readiness).
/livez (KIT_LIVE_PATH) answers 200 whenever a worker can run a request at all, without the
database, so an orchestrator's liveness probe restarts a stuck process but never every
replica during a database outage. Image only.

Every unhandled exception in a request is also written to stderr with its traceback
(:func:`report_request_exception`, connected to Django's ``got_request_exception``), so a
500 always leaves a trace in the container's log, whatever the project's LOGGING does with
``django.request``. The project's own handlers are left as they are.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Callable, Protocol

from django.core.signals import got_request_exception
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, connection

from kitbuild_runtime import environment, settings_guard

HEALTH_PATH = environment.health_path(os.environ)
LIVE_PATH = environment.live_path(os.environ)


class StartResponse(Protocol):
    """PEP 3333's start_response: status and headers, and exc_info when replacing them."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None]
        | None = ...,
        /,
    ) -> Callable[[bytes], object]:
        """Begin the response; return the (legacy) write callable."""
        ...


Application = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _load_project_application() -> Application:
    """Import the project's WSGI callable, with kitbuild's overlay already configured.

    Settings are configured first, from DJANGO_SETTINGS_MODULE (the overlay), so a WSGI
    module that assigns the variable (``os.environ["DJANGO_SETTINGS_MODULE"] = ...``
    instead of ``setdefault``) cannot swap the overlay for the bare project settings:
    Django reads the variable once. What it assigned is put back, and said once.
    """
    overlay = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    settings_guard.configure()
    dotted = os.environ.get("KIT_WSGI_APPLICATION", "")
    module_name, _, attribute = dotted.rpartition(".")
    if not module_name:
        return get_wsgi_application()  # type: ignore[no-any-return]
    try:
        return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]
    finally:
        settings_guard.restore(overlay, f"the WSGI module {module_name}")


def report_request_exception(sender: object, request: Any = None, **kwargs: Any) -> None:
    """Write the exception being handled, with its traceback, to stderr (one block)."""
    error_type, error, trace = sys.exc_info()
    if error_type is None:
        return
    method = getattr(request, "method", "?")
    path = getattr(request, "path", "?")
    text = "".join(traceback.format_exception(error_type, error, trace))
    sys.stderr.write(f"kitbuild: unhandled exception in {method} {path}\n{text}")
    sys.stderr.flush()


_project_application = _load_project_application()
# Strong reference and a fixed uid: connected once per process, kept for its lifetime.
got_request_exception.connect(
    report_request_exception, weak=False, dispatch_uid="kitbuild_runtime.request_exception"
)


def _health(start_response: StartResponse) -> list[bytes]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        status, body = "200 OK", b"ok\n"
    # Whatever the database driver raises means "not healthy": answer 503 and say what.
    except Exception as error:
        status, body = "503 Service Unavailable", f"database: {type(error).__name__}\n".encode()
    finally:
        # Give the connection back as a request would, so health checks never leak one.
        close_old_connections()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _live(start_response: StartResponse) -> list[bytes]:
    body = b"live\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Serve the health endpoints, and everything else through the project."""
    path = environ.get("PATH_INFO")
    if path == HEALTH_PATH:
        return _health(start_response)
    if path == LIVE_PATH:
        return _live(start_response)
    return _project_application(environ, start_response)
