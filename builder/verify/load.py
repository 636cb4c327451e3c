"""A small, bounded HTTP load generator: N client threads for D seconds (stdlib only).

`kitbuild verify`, the tests and the benchmarks drive images with it.

Every request opens its own connection (``Connection: close``), so each outcome belongs to
exactly one request, and the moment it fails is known:

- ``refused``: the connection was refused, so no request was sent (a server that has
  stopped listening does this, which a graceful stop is allowed to do);
- ``lost``: the connection was accepted and the request was sent (or being sent), but no
  complete response came back: a reset, an empty reply, a truncated body or a timeout;
- otherwise the request got a status code, and ``ok`` counts the 2xx ones.

The generator stops by itself: at its deadline, after ``max_requests`` requests, or on
:meth:`Load.stop`. Every socket has a timeout, and :meth:`Load.join` waits a bounded time.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

#: More client threads than this would measure the client machine rather than the server.
MAX_CONCURRENCY = 1000

#: How long a client waits for the server to close a connection it has answered.
EOF_WAIT = 1.0

#: After a refused connection a client waits this long, so a closed port is not hammered.
REFUSED_BACKOFF = 0.05


@dataclasses.dataclass(frozen=True)
class Sample:
    """One request: when it started and ended (monotonic seconds) and how it ended."""

    started: float
    finished: float
    status: int | None = None  # the response's status code, when one arrived complete
    error: str | None = None  # the exception's class name, when none did
    phase: str | None = None  # "connect", "send" or "receive": where the error happened

    @property
    def ok(self) -> bool:
        """Whether the request was answered with a 2xx status."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def latency(self) -> float:
        """Seconds from opening the connection to the end of the response (or the error)."""
        return self.finished - self.started


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """Everything the clients saw, with the counts tests assert on."""

    samples: tuple[Sample, ...]
    concurrency: int
    seconds: float  # from start to the last client's end

    @property
    def total(self) -> int:
        """Requests attempted, including refused ones."""
        return len(self.samples)

    @property
    def ok(self) -> int:
        """Requests answered with a 2xx status."""
        return sum(1 for s in self.samples if s.ok)

    @property
    def failed(self) -> int:
        """Requests not answered with a 2xx status, for whatever reason."""
        return self.total - self.ok

    @property
    def statuses(self) -> dict[int, int]:
        """Complete responses by status code."""
        return dict(collections.Counter(s.status for s in self.samples if s.status is not None))

    @property
    def exceptions(self) -> dict[str, int]:
        """Requests that got no response, by ``phase:ExceptionName``."""
        return dict(collections.Counter(f"{s.phase}:{s.error}" for s in self.samples if s.error))

    @property
    def refused(self) -> int:
        """Connections refused: nothing was sent."""
        return sum(1 for s in self.samples if s.error == "ConnectionRefusedError")

    @property
    def not_sent(self) -> int:
        """Requests that failed before they were sent (refused or a connect timeout)."""
        return sum(1 for s in self.samples if s.phase == "connect")

    @property
    def lost(self) -> int:
        """Requests sent on an accepted connection that got no complete response."""
        return len(self.lost_samples)

    @property
    def lost_samples(self) -> list[Sample]:
        """The lost requests themselves, for assertion messages."""
        return [s for s in self.samples if s.error is not None and s.phase != "connect"]

    @property
    def latencies(self) -> list[float]:
        """Seconds per complete response, in the order they started."""
        return [s.latency for s in self.samples if s.status is not None]

    def percentile(self, fraction: float) -> float:
        """A latency percentile over complete responses (0.0 when there were none)."""
        return percentile(self.latencies, fraction)

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        return (
            f"{self.total} requests from {self.concurrency} clients in {self.seconds:.1f} s: "
            f"ok={self.ok} failed={self.failed} statuses={self.statuses} "
            f"refused={self.refused} lost={self.lost} exceptions={self.exceptions} "
            f"p50={self.percentile(0.5):.3f}s p99={self.percentile(0.99):.3f}s"
        )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank; 0.0 when empty)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Load:
    """``concurrency`` threads sending GET ``path`` to host:port until a bound is reached."""

    def __init__(
        self,
        port: int,
        path: str,
        *,
        concurrency: int,
        duration: float,
        host: str = "127.0.0.1",
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_requests: int = 200_000,
        host_header: str | None = None,
    ) -> None:
        """Set the bounds; nothing runs until :meth:`start`.

        ``timeout`` bounds each read and write once connected; ``connect_timeout`` bounds
        the connect, so a server that vanished does not hold a client for long.
        ``host_header`` replaces the Host header (``host:port`` by default), for a server
        reached by an address its ALLOWED_HOSTS does not list.
        """
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency {concurrency}: use 1 to {MAX_CONCURRENCY}")
        if not 0 < duration <= 600:
            raise ValueError(f"duration {duration}: use more than 0 and at most 600 seconds")
        self.host, self.port, self.path = host, port, path
        self.concurrency, self.duration, self.timeout = concurrency, duration, timeout
        self.connect_timeout = connect_timeout
        self._headers = {"Connection": "close"}
        if host_header is not None:
            self._headers["Host"] = host_header
        self._budget = threading.Semaphore(max_requests)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._deadline = 0.0

    def start(self) -> Load:
        """Start the clients and return self."""
        self._started = time.monotonic()
        self._deadline = self._started + self.duration
        self._threads = [
            threading.Thread(target=self._client, name=f"load-{n}", daemon=True)
            for n in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask every client to finish its current request and stop."""
        self._stop.set()

    def join(self) -> LoadResult:
        """Wait (bounded) for the clients to stop, and return what they saw."""
        # A client ends by its deadline plus one request's timeouts (connect and read).
        limit = self._deadline + self.connect_timeout + 2 * self.timeout + 5
        for thread in self._threads:
            thread.join(max(0.0, limit - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        self._stop.set()
        if alive:
            raise RuntimeError(f"load clients still running after their bound: {alive[:5]}")
        with self._lock:
            samples = tuple(sorted(self._samples, key=lambda s: s.started))
        ended = max((s.finished for s in samples), default=self._started)
        return LoadResult(samples, self.concurrency, ended - self._started)

    def run(self) -> LoadResult:
        """Start, let the clients run to their deadline, and return the result."""
        return self.start().join()

    def _client(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            if not self._budget.acquire(blocking=False):
                return
            sample = self._one_request()
            with self._lock:
                self._samples.append(sample)
            if sample.phase == "connect":
                self._stop.wait(REFUSED_BACKOFF)

    def _one_request(self) -> Sample:
        started = time.monotonic()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        phase = "connect"
        held: socket.socket | None = None
        try:
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(self.timeout)
            # http.client closes its socket as soon as the body is read; a duplicate keeps
            # the connection open until the server has closed its side (see _close_quietly).
            held = connection.sock.dup()
            phase = "send"
            connection.request("GET", self.path, headers=self._headers)
            phase = "receive"
            response = connection.getresponse()
            response.read()
            return Sample(started, time.monotonic(), status=response.status)
        except (OSError, http.client.HTTPException) as error:
            return Sample(started, time.monotonic(), error=type(error).__name__, phase=phase)
        finally:
            connection.close()
            if held is not None:
                _close_quietly(held)


def _close_quietly(held: socket.socket) -> None:
    """Close after the server has closed, and with a reset: no TIME_WAIT left on this host.

    A client that closes first leaves its port in TIME_WAIT for a minute (and so does
    Docker's port proxy, towards the container). Tens of thousands of requests a minute then
    use up the ephemeral ports, and the engine's next published port can collide with one.
    Waiting (briefly) for the server's close, then resetting, leaves nothing behind.
    """
    try:
        held.settimeout(EOF_WAIT)
        while held.recv(4096):
            pass
    except OSError:
        pass
    with contextlib.suppress(OSError):
        held.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    held.close()
