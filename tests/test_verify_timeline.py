"""The sampler (real thread, fake counters) and the timeline built from its readings (pure)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from builder.verify.load import Sample
from builder.verify.sampler import COUNTERS, Sampler, Sampling, Tick
from builder.verify.timeline import build_timeline


def counters(threads: int, high: int, refused: int) -> dict[str, int]:
    """One reading of the three counters the sampler asks for."""
    return dict(zip(COUNTERS, (threads, high, refused), strict=True))


@pytest.mark.parametrize(
    ("seconds", "slots"),
    [(8.0, 8), (8.4, 8), (8.5, 9), (8.9, 9), (0.2, 1), (1.0, 1)],
)
def test_a_run_has_one_point_per_started_second_and_no_sliver(seconds: float, slots: int) -> None:
    """A last piece shorter than half an interval joins the one before; at least one point."""
    assert slots == Sampling(100.0, 100.0 + seconds, 1.0, ()).slots


def test_points_put_each_request_in_the_second_it_ended() -> None:
    """Requests are counted by when they finished; latency percentiles are per second."""
    sampling = Sampling(
        origin=10.0,
        end=13.2,
        interval=1.0,
        ticks=(
            Tick(1, 11.0, counters(21, 21, 5)),
            Tick(2, 12.0, counters(38, 38, 5)),
            Tick(3, 13.2, counters(30, 38, 9)),
        ),
    )
    samples = [
        Sample(10.0, 10.5, status=200),
        Sample(10.2, 11.0, status=200),  # ends exactly at 1 s: the first second's
        Sample(10.9, 11.4, status=500),
        Sample(11.0, 11.9, error="ConnectionResetError", phase="receive"),
        Sample(12.0, 12.1, status=200),
        Sample(12.5, 13.1, status=200),  # in the last, longer interval (2 s to 3.2 s)
    ]

    timeline = build_timeline(sampling, samples, refused_before=5, own_sessions=1)

    assert 3.2 == pytest.approx(timeline.seconds)
    assert [1.0, 2.0, 3.2] == [pytest.approx(p.second) for p in timeline.points]
    assert [(2, 2, 0), (2, 0, 2), (2, 2, 0)] == [
        (p.requests, p.ok, p.failed) for p in timeline.points
    ]
    assert [20, 37, 29] == [p.app_connections for p in timeline.points]
    assert [20, 37, 37] == [p.app_high_water for p in timeline.points]
    assert [0, 0, 4] == [p.errors_1040 for p in timeline.points]
    # Latency is of complete responses, a 500 included; the reset has none.
    assert pytest.approx([0.8, 0.5, 0.6]) == [p.latency_p50 for p in timeline.points]
    assert pytest.approx([0.8, 0.5, 0.6]) == [p.latency_p99 for p in timeline.points]
    assert 2 / 1.2 == pytest.approx(timeline.points[2].requests_per_second)
    assert timeline.points[1] is timeline.first_failure


def test_an_unsampled_second_is_a_gap_and_its_refusals_go_to_the_next_reading() -> None:
    """A second whose reading was skipped has no server figures; none are made up."""
    sampling = Sampling(
        0.0, 3.0, 1.0, (Tick(1, 1.0, counters(5, 5, 0)), Tick(3, 3.0, counters(7, 9, 6)))
    )

    points = build_timeline(sampling, [], refused_before=0, own_sessions=1).points

    assert [4, None, 6] == [p.app_connections for p in points]
    assert [0, None, 6] == [p.errors_1040 for p in points]
    assert [None, None, None] == [p.latency_p50 for p in points]
    assert {"second": 2.0, "app_connections": None, "errors_1040": None, "requests": 0}.items() <= (
        points[1].as_dict().items()
    )


class Counters:
    """Counters that count how often, and from which thread, they were read."""

    def __init__(self, fail_after: int | None = None) -> None:
        """Fail (like a lost session) after ``fail_after`` readings, if given."""
        self.readings: list[tuple[float, str]] = []
        self.fail_after = fail_after

    def statuses(self, names: Sequence[str]) -> dict[str, int]:
        """The reading's number as every counter."""
        if self.fail_after is not None and len(self.readings) >= self.fail_after:
            raise ConnectionError("lost the session")
        self.readings.append((time.monotonic(), threading.current_thread().name))
        return dict.fromkeys(names, len(self.readings))


def test_sampler_reads_once_per_interval_then_once_more_at_stop() -> None:
    """Readings at origin + k x interval on its own thread, and the last one at stop."""
    source = Counters()
    sampler = Sampler(source, interval=0.05)

    origin = sampler.start()
    time.sleep(0.23)
    sampling = sampler.stop()

    assert origin == sampling.origin
    assert 5 == sampling.slots == len(sampling.ticks)
    assert [1, 2, 3, 4, 5] == [tick.slot for tick in sampling.ticks]
    assert all(tick.at >= origin + tick.slot * 0.05 - 1e-3 for tick in sampling.ticks[:-1]), (
        sampling.ticks
    )
    assert {"verify-sampler"} == {thread for _, thread in source.readings[:4]}
    assert threading.current_thread().name == source.readings[-1][1]
    assert sampling.end == sampling.ticks[-1].at


def test_sampler_hands_its_failure_to_the_caller_and_halt_reads_nothing() -> None:
    """A reading that fails in the thread is raised by stop(); halt() only ends the thread."""
    failing = Sampler(Counters(fail_after=1), interval=0.02)
    failing.start()
    time.sleep(0.1)
    with pytest.raises(ConnectionError, match="lost the session"):
        failing.stop()

    source = Counters()
    halted = Sampler(source, interval=10)
    halted.start()
    halted.halt()
    assert [] == source.readings
