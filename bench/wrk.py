"""wrk, Debian's HTTP load generator, as the worker study's client: its command and its report.

Two kinds of client, as real traffic arrives:

- ``keep-alive``: each of wrk's connections sends request after request (an ingress
  controller, or nginx with upstream keepalive, talks to the app like this);
- ``per-request``: every request on a new connection (``Connection: close``), as a client
  that does not keep connections does.

The parsing is pure, so the tests read wrk's real report text without running it.
"""

from __future__ import annotations

import dataclasses
import re

CLIENTS = ("keep-alive", "per-request")

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.MULTILINE)


class WrkReportError(ValueError):
    """wrk printed something that is not a report (it failed, or its format changed)."""


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """What one wrk run saw."""

    requests: int
    seconds: float
    socket_errors: int  # connect + read + write + timeout
    non_2xx: int
    p50: float | None
    p99: float | None

    @property
    def failed(self) -> int:
        """Requests that did not end in a 2xx/3xx answer, as wrk counts them."""
        return self.socket_errors + self.non_2xx

    @property
    def requests_per_second(self) -> float:
        """Answered requests (not failed ones) per second."""
        return max(self.requests - self.non_2xx, 0) / self.seconds if self.seconds else 0.0


def command(
    url: str, *, client: str, connections: int, seconds: float, threads: int = 2
) -> list[str]:
    """The wrk command line for one run of ``client`` kind against ``url``."""
    if client not in CLIENTS:
        raise ValueError(f"unknown client {client!r}: one of {', '.join(CLIENTS)}")
    argv = [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        # Overload queues requests for seconds; wrk's default 2 s would count them as errors.
        "--timeout=20s",
        "--latency",
    ]
    if client == "per-request":
        argv += ["--header", "Connection: close"]
    return [*argv, url]


def _seconds(number: str, unit: str) -> float:
    return float(number) * _UNITS[unit]


def parse(report: str) -> WrkResult:
    """Read wrk's report (``--latency`` adds the percentiles)."""
    total = _REQUESTS.search(report)
    if total is None:
        first = report.strip().splitlines()[:1]
        raise WrkReportError(f"not a wrk report: {first[0] if first else 'no output'}")
    errors = _SOCKET_ERRORS.search(report)
    non_2xx = _NON_2XX.search(report)
    percentiles = {m[1]: _seconds(m[2], m[3]) for m in _PERCENTILE.finditer(report)}
    return WrkResult(
        requests=int(total[1]),
        seconds=_seconds(total[2], total[3]),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        p50=percentiles.get("50"),
        p99=percentiles.get("99"),
    )
