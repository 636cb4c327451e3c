"""The run second by second: the server's readings beside what the clients saw (pure).

Point k covers the k-th interval after the sampling's origin (the last one runs to the end
of the run). Its server figures come from the reading that closed it; its request figures
from the requests that *finished* in it, so a request counts once, when its outcome was
known.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING, Any

from builder.verify.load import percentile

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from builder.verify.load import Sample
    from builder.verify.sampler import Sampling


@dataclasses.dataclass(frozen=True)
class Point:
    """One interval of the run."""

    second: float  # where the interval ends, in seconds from the origin
    span: float  # its length in seconds
    app_connections: int | None  # Threads_connected less verify's sessions; None: not read
    app_high_water: int | None  # Max_used_connections less verify's sessions, so far
    errors_1040: int | None  # connections the server refused in this interval
    requests: int  # requests that ended in the interval
    ok: int  # of which answered 2xx
    latency_p50: float | None  # of the complete responses that ended in it; None: none did
    latency_p99: float | None

    @property
    def failed(self) -> int:
        """Requests that ended in the interval without a 2xx answer."""
        return self.requests - self.ok

    @property
    def requests_per_second(self) -> float:
        """Requests answered 2xx per second in the interval."""
        return self.ok / self.span if self.span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "second": round(self.second, 3),
            "app_connections": self.app_connections,
            "app_high_water": self.app_high_water,
            "errors_1040": self.errors_1040,
            "requests": self.requests,
            "ok": self.ok,
            "failed": self.failed,
            "requests_per_second": round(self.requests_per_second, 1),
            "latency_p50": None if self.latency_p50 is None else round(self.latency_p50, 4),
            "latency_p99": None if self.latency_p99 is None else round(self.latency_p99, 4),
        }


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Every point of a run, and how it was sampled."""

    interval: float
    seconds: float  # from the origin to the end of the run
    points: tuple[Point, ...]

    @property
    def first_failure(self) -> Point | None:
        """The first interval with a failed request or a refused connection."""
        return next((p for p in self.points if p.failed or p.errors_1040), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the sampling and one object per point."""
        return {
            "interval": self.interval,
            "seconds": round(self.seconds, 3),
            "points": [point.as_dict() for point in self.points],
        }


#: A run that was not sampled (a report made from measurements alone).
EMPTY = Timeline(interval=0.0, seconds=0.0, points=())


def build_timeline(
    sampling: Sampling, samples: Sequence[Sample], *, refused_before: int, own_sessions: int
) -> Timeline:
    """Put the server's readings and the requests side by side, one point per interval.

    ``refused_before`` is Connection_errors_max_connections before the load, so the first
    interval's refusals are its own; ``own_sessions`` is how many sessions verify held.
    """
    slots, interval = sampling.slots, sampling.interval
    ends = [sampling.origin + k * interval for k in range(1, slots)]
    finished: list[list[Sample]] = [[] for _ in range(slots)]
    for sample in samples:
        finished[bisect.bisect_left(ends, sample.finished)].append(sample)
    readings = {tick.slot: tick.counters for tick in sampling.ticks}
    refused = refused_before
    points = []
    for index in range(slots):
        slot = index + 1
        start = index * interval
        end = slot * interval if slot < slots else sampling.end - sampling.origin
        counters = readings.get(slot)
        errors = None
        if counters is not None:
            total = counters["Connection_errors_max_connections"]
            errors, refused = total - refused, total
        latencies = [s.latency for s in finished[index] if s.status is not None]
        points.append(
            Point(
                second=end,
                span=end - start,
                app_connections=_less(counters, "Threads_connected", own_sessions),
                app_high_water=_less(counters, "Max_used_connections", own_sessions),
                errors_1040=errors,
                requests=len(finished[index]),
                ok=sum(1 for s in finished[index] if s.ok),
                latency_p50=percentile(latencies, 0.5) if latencies else None,
                latency_p99=percentile(latencies, 0.99) if latencies else None,
            )
        )
    return Timeline(interval, sampling.end - sampling.origin, tuple(points))


def _less(counters: Mapping[str, int] | None, name: str, own: int) -> int | None:
    """A connection counter less verify's own sessions; None when it was not read."""
    return None if counters is None else max(0, counters[name] - own)
