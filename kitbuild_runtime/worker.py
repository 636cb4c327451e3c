"""gunicorn's gthread worker, with a stop that turns no connection away mid-flight.

On SIGTERM, gunicorn's gthread worker stops watching its listening socket but keeps it
open until its in-flight requests finish. Connections that reach the kernel's backlog in
between are then reset: the client sent a request and lost it. This worker, once asked
to stop, accepts everything already queued, serves it like any other request, and then
closes its listeners, so later connections are refused cleanly (a client or load
balancer can retry them elsewhere) instead of being accepted and dropped.

It relies on gthread internals of gunicorn 25 to 27; ``supported()`` says whether the
installed gunicorn has them, and gunicorn_config falls back to plain gthread if not.
Image only.
"""

from __future__ import annotations

from gunicorn.workers import gthread


def supported() -> bool:
    """Whether this gunicorn's gthread worker has the hooks this class builds on."""
    worker = gthread.ThreadWorker
    return (
        hasattr(worker, "set_accept_enabled")
        and hasattr(worker, "enqueue_req")
        and hasattr(gthread, "TConn")
    )


class DrainingThreadWorker(gthread.ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gthread, plus: on a graceful stop, serve the backlog, then close the listeners."""

    def set_accept_enabled(self, enabled: bool) -> None:
        """As gthread; when disabling for good (stopping), drain and close the listeners."""
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            self._drain_and_close_listeners()

    def _drain_and_close_listeners(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
            while True:
                try:
                    client, address = listener.accept()
                except (BlockingIOError, InterruptedError, OSError):
                    break
                client.setblocking(True)
                self.nr_conns += 1
                self.enqueue_req(gthread.TConn(self.cfg, client, address, listener.getsockname()))
            # This worker's copy of the socket; once every worker has closed its copy (the
            # master closed its own first), the port refuses new connections.
            listener.close()
